import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line (`N passed, N failed, N skipped`) and, under TCP_KEEPALIVE_STRICT=1 (set by
 * .ci/run), fails the run if any test was skipped: a suite that must run may not turn green by not running.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    const skipped: string[] = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped.push(`${module.moduleId}: ${test.fullName}`);
      }
    }
    const mustNotSkip = process.env.TCP_KEEPALIVE_STRICT === '1' && skipped.length > 0;
    if (mustNotSkip) process.exitCode = 1;
    process.once('exit', () => {
      if (mustNotSkip) console.log(`\nTCP_KEEPALIVE_STRICT=1 and ${skipped.length} test(s) did not run:\n  ${skipped.join('\n  ')}`);
      console.log(`\n${passed} passed, ${failed} failed, ${skipped.length} skipped`);
    });
  }
}
