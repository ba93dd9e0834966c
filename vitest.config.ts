import { configDefaults, defineConfig } from 'vitest/config';

/**
 * Two tiers, run one after the other by `npm test` (package.json), each with its own `vitest run --project`:
 * - fast: test/fast/, pure logic and loopback sockets, no root, no Linux, no child processes; seconds.
 * - slow: every other suite (kernel observers, namespaces, real servers, other runtimes, packaging); those
 *   that cannot run here skip and say why, and TCP_KEEPALIVE_STRICT=1 (.ci/run) fails the run on any skip.
 * `vitest run <file>` with no --project still finds a file in either tier.
 */
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'fast', include: ['test/fast/**/*.test.ts'], testTimeout: 10_000 } },
      { extends: true, test: { name: 'slow', include: ['test/**/*.test.ts'], exclude: [...configDefaults.exclude, 'test/fast/**'] } },
    ],
  },
});
