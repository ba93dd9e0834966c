import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import vitestConfig from '../vitest.config';
import { runOk } from './support/run';

const root = join(__dirname, '..');
const workflowsDir = join(root, '.github', 'workflows');
const { RELEASE, checkPrebuilds } = createRequire(__filename)(join(root, 'scripts', 'check-prebuilds.js')) as {
  RELEASE: string[];
  checkPrebuilds(dir: string, options?: { release?: boolean }): { found: string[]; problems: string[] };
};

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

interface Job {
  name?: string;
  'runs-on': string;
  'timeout-minutes'?: number;
  permissions?: Record<string, string> | string;
  needs?: string | string[];
  container?: { image: string; options?: string };
  strategy?: { 'fail-fast'?: boolean; matrix: Record<string, unknown> & { include?: Array<Record<string, string>> } };
  steps: Step[];
}

interface Workflow {
  on: Record<string, unknown>;
  permissions: unknown;
  jobs: Record<string, Job>;
}

/** Parsed as YAML 1.2 (so `on:` stays a string key, unlike YAML 1.1 parsers), failing on any error, warning or duplicate key. */
function load(file: string): { text: string; workflow: Workflow } {
  const text = readFileSync(join(workflowsDir, file), 'utf8');
  const doc = parseDocument(text, { uniqueKeys: true, strict: true, prettyErrors: true });
  expect([...doc.errors, ...doc.warnings].map((e) => e.message)).toEqual([]);
  return { text, workflow: doc.toJS() as Workflow };
}

/** Which tests the portable contract (test/portable/contract.js) runs on a platform. */
const { planFor } = createRequire(__filename)(join(root, 'test', 'portable', 'contract.js')) as { planFor(where: string): string[] };

const files = readdirSync(workflowsDir).filter((name) => /\.ya?ml$/.test(name)).sort();
const steps = (job: Job, action: string): Step[] => job.steps.filter((step) => step.uses?.startsWith(`${action}@`));
const runIndex = (job: Job, pattern: RegExp): number => job.steps.findIndex((step) => pattern.test(step.run ?? ''));

describe('GitHub workflows', () => {
  it('are exactly ci.yml and prebuild.yml', () => {
    expect(files).toEqual(['ci.yml', 'prebuild.yml']);
  });

  describe.each(files)('%s', (file) => {
    const { text, workflow } = load(file);
    const jobs = Object.entries(workflow.jobs);

    it('grants nothing at the top (permissions: {}) and runs on no privileged trigger', () => {
      expect(workflow.permissions).toEqual({});
      expect(Object.keys(workflow.on)).not.toContain('pull_request_target');
      expect(Object.keys(workflow.on)).not.toContain('workflow_run');
    });

    it('gives every job its own minimal permissions and a timeout', () => {
      for (const [id, job] of jobs) {
        expect(typeof job.permissions, id).toBe('object');
        for (const [scope, level] of Object.entries(job.permissions as Record<string, string>)) {
          const allowed = file === 'prebuild.yml' && id === 'publish' && scope === 'id-token' ? ['write'] : ['read', 'none'];
          expect(allowed, `${id}: ${scope}: ${level}`).toContain(level);
        }
        expect(job['timeout-minutes'], id).toBeGreaterThan(0);
      }
    });

    it('pins every action to a full commit, with its version in a comment', () => {
      const uses = text.split('\n').filter((line) => /^\s*-?\s*uses:/.test(line));
      expect(uses.length).toBeGreaterThan(0);
      for (const line of uses) expect(line).toMatch(/uses: [\w-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    });

    it('checks out without persisting credentials, uploads fail on no files, and run steps interpolate no expressions', () => {
      for (const [id, job] of jobs) {
        for (const step of steps(job, 'actions/checkout')) expect(step.with?.['persist-credentials'], id).toBe(false);
        for (const step of steps(job, 'actions/upload-artifact')) expect(step.with?.['if-no-files-found'], id).toBe('error');
        for (const step of job.steps) if (step.run) expect(step.run, `${id}: ${step.run}`).not.toContain('${{');
        const writes = Object.values(job.permissions as Record<string, string>).includes('write');
        if (writes) for (const step of steps(job, 'actions/setup-node')) expect(step.with?.['package-manager-cache'], id).toBe(false);
      }
    });
  });

  describe('ci.yml', () => {
    const { workflow } = load('ci.yml');
    const job = workflow.jobs.test;

    it('runs on pushes to main and on pull requests', () => {
      expect(workflow.on).toEqual({ push: { branches: ['main'] }, pull_request: null });
    });

    it('tests Ubuntu, macOS and Windows on Node 20, 22, 24 and 26, without fail-fast', () => {
      expect(job.strategy?.['fail-fast']).toBe(false);
      expect(job.strategy?.matrix.os).toEqual(['ubuntu-latest', 'macos-latest', 'windows-latest']);
      expect(job.strategy?.matrix.node).toEqual([20, 22, 24, 26]);
      expect(job['runs-on']).toBe('${{ matrix.os }}');
      expect(steps(job, 'actions/setup-node')[0].with?.['node-version']).toBe('${{ matrix.node }}');
    });

    it('builds from source, then on Linux runs the suite as root', () => {
      const install = runIndex(job, /^npm ci\b/);
      const linux = job.steps.findIndex((step) => step.if === "runner.os == 'Linux'");
      expect(install).toBeGreaterThanOrEqual(0);
      expect(job.steps[install].run).not.toContain('--ignore-scripts');
      expect(linux).toBeGreaterThan(install);
      expect(job.steps[linux].run).toMatch(/sudo -E env "PATH=\$PATH" npm test/);
      expect(job.steps.find((step) => step.if === "runner.os != 'Linux'")?.run).toBe('npm test');
    });

    it('runs .ci/run itself, strict, in a privileged Debian 12 container (the servers, Wine, Bun, Deno and arm64 suites)', () => {
      const debian = workflow.jobs.debian;
      expect(debian.container).toEqual({ image: 'debian:12', options: '--privileged' });
      expect(debian['timeout-minutes']).toBeGreaterThanOrEqual(90);
      expect(debian.steps.at(-1)?.run).toBe('bash .ci/run');
      expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(/^export TCP_KEEPALIVE_STRICT=1$/m);
      for (const step of debian.steps) expect(step.if).toBeUndefined();
    });

    // The portable contract on the real OSes: it cannot run here, so its jobs' shape is checked instead.
    const portable = {
      windows: { os: 'windows-latest', where: 'win32', musts: ['client socket', 'keepalivecount', 'usertimeout', 'server', 'TLS', 'errors', 'getTcpInfo', 'worker thread', 'native lookup', 'lookup cost'] },
      macos: { os: 'macos-latest', where: 'darwin', musts: ['client socket', 'keepalivecount', 'usertimeout', 'server', 'TLS', 'errors', 'getTcpInfo', 'worker thread', 'dead peer'] },
    };

    it.each(Object.entries(portable))('job %s runs the portable contract on the real OS, on Node 20-26, where nothing may skip', (id, { os, where, musts }) => {
      const portableJob = workflow.jobs[id];
      expect(portableJob['runs-on']).toBe(os);
      expect(portableJob.strategy?.['fail-fast']).toBe(false);
      expect(portableJob.strategy?.matrix.node).toEqual([20, 22, 24, 26]);
      expect(steps(portableJob, 'actions/setup-node')[0].with?.['node-version']).toBe('${{ matrix.node }}');
      const install = runIndex(portableJob, /^npm ci\b/);
      const contract = runIndex(portableJob, /^node test\/portable\/contract\.js$/);
      expect(install).toBeGreaterThanOrEqual(0);
      expect(portableJob.steps[install].run).not.toContain('--ignore-scripts');
      expect(contract).toBeGreaterThan(install);
      expect(JSON.stringify(portableJob)).not.toMatch(/continue-on-error|KA_CONTRACT_ONLY/);
      for (const step of portableJob.steps) expect(step.if, step.name ?? step.run ?? step.uses).toBeUndefined();
      const required = String(portableJob.steps[contract].env?.KA_CONTRACT_REQUIRE).split('|');
      expect(required).toEqual(musts);
      const plan = planFor(where);
      for (const prefix of required) expect(plan.some((name) => name.startsWith(prefix)), `${prefix} runs on ${where}`).toBe(true);
    });

    it('the dead peer runs on macOS (pfctl) but is not claimed for real Windows, which cannot silence loopback', () => {
      expect(planFor('darwin').some((name) => name.startsWith('dead peer'))).toBe(true);
      expect(planFor('win32').some((name) => name.startsWith('dead peer'))).toBe(false);
      expect(readFileSync(join(root, 'test', 'portable', 'contract.js'), 'utf8')).toMatch(/'sudo', \['-n', 'pfctl', '-a', anchor, '-f', '-'\]/);
    });
  });

  describe('prebuild.yml', () => {
    const { workflow } = load('prebuild.yml');
    const builders = Object.entries(workflow.jobs).filter(([id]) => id !== 'publish' && id !== 'release-gate');
    const publish = workflow.jobs.publish;

    it('runs on version tags only', () => {
      expect(workflow.on).toEqual({ push: { tags: ['v*'] } });
    });

    it('has one job per platform/arch, together exactly the release set check-prebuilds.js requires', () => {
      const targets = builders.flatMap(([, job]) => job.strategy!.matrix.include!.map((entry) => entry.target)).sort();
      expect(targets).toEqual(['darwin-arm64', 'darwin-x64', 'linux-arm64-glibc', 'linux-x64-glibc', 'linux-x64-musl', 'win32-arm64', 'win32-x64']);
      const asFiles = targets.map((target) => {
        const [platform, arch, libc] = target.split('-');
        return `${platform}-${arch}/tcp-keepalive${libc ? `.${libc}` : ''}.node`;
      });
      expect(asFiles.sort()).toEqual([...RELEASE].sort());
    });

    it('builds glibc binaries on manylinux_2_28 (glibc 2.28) and musl ones on Alpine', () => {
      const linux = workflow.jobs.linux;
      expect(linux.container?.image).toBe('${{ matrix.image }}');
      for (const entry of linux.strategy!.matrix.include!) {
        expect(entry.image, entry.target).toMatch(entry.libc === 'glibc' ? /^quay\.io\/pypa\/manylinux_2_28_(x86_64|aarch64)$/ : /^node:\d+-alpine$/);
        expect(entry.target.endsWith(`-${entry.libc}`)).toBe(true);
      }
    });

    it.each(builders.map(([id]) => id))('job %s builds, checks and tests its prebuild, then uploads it or fails', (id) => {
      const job = workflow.jobs[id];
      expect(job.strategy?.['fail-fast']).toBe(false);
      const order = [/^npm ci --ignore-scripts/, /^npm run prebuild$/, /^node scripts\/check-prebuilds\.js$/, /^npx vitest run test\/contract\.test\.ts$/].map((re) => runIndex(job, re));
      expect(order.every((index) => index >= 0), String(order)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(job.steps[order[3]].env).toEqual({ PREBUILDS_ONLY: '1' });
      const [upload] = steps(job, 'actions/upload-artifact');
      expect(upload.with).toMatchObject({ name: 'prebuild-${{ matrix.target }}', path: 'prebuilds/', 'if-no-files-found': 'error' });
      expect(job.steps.indexOf(upload)).toBeGreaterThan(order[3]);
    });

    it('the macOS and Windows builders run the portable contract against their prebuild, naming tests that run there', () => {
      const native = workflow.jobs.native;
      const contract = runIndex(native, /^node test\/portable\/contract\.js$/);
      expect(contract).toBeGreaterThan(runIndex(native, /^npm run build:ts$/));
      expect(native.steps[contract].env).toEqual({ PREBUILDS_ONLY: '1', KA_CONTRACT_REQUIRE: '${{ matrix.contract }}' });
      expect(native.steps.indexOf(steps(native, 'actions/upload-artifact')[0])).toBeGreaterThan(contract);
      for (const entry of native.strategy!.matrix.include!) {
        const where = entry.target.split('-')[0];
        const required = String(entry.contract).split('|');
        expect(required, entry.target).toContain(where === 'darwin' ? 'dead peer' : 'native lookup');
        const plan = planFor(where);
        for (const prefix of required) expect(plan.some((name) => name.startsWith(prefix)), `${entry.target}: ${prefix} runs on ${where}`).toBe(true);
      }
    });

    it('the release gate tests every build together, strictly, in a privileged Debian 12 container; publish needs it', () => {
      const gate = workflow.jobs['release-gate'];
      expect([gate.needs].flat().sort()).toEqual(builders.map(([id]) => id).sort());
      expect(gate.container).toEqual({ image: 'debian:12', options: '--privileged' });
      const [download] = steps(gate, 'actions/download-artifact');
      expect(download.with).toEqual({ pattern: 'prebuild-*', path: 'prebuilds', 'merge-multiple': true });
      const order = [
        gate.steps.indexOf(download),
        runIndex(gate, /^node scripts\/check-prebuilds\.js --release$/),
        runIndex(gate, /^npm ci --ignore-scripts/),
        runIndex(gate, /^bash \.ci\/steps\//m),
        runIndex(gate, /^npm run test-prebuild$/),
      ];
      expect(order.every((index) => index >= 0), String(order)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(gate.steps[order[3]].env).toEqual({ PREBUILDS_ONLY: '1' });
      expect(gate.steps[order[4]].env).toEqual({ TCP_KEEPALIVE_STRICT: '1' });
      for (const step of gate.steps) expect(step.if, step.name ?? step.run ?? step.uses).toBeUndefined();
      expect(JSON.stringify(gate)).not.toMatch(/continue-on-error/);

      expect([publish.needs].flat()).toEqual(['release-gate']);
      const publishOrder = [
        publish.steps.indexOf(steps(publish, 'actions/download-artifact')[0]),
        runIndex(publish, /^node scripts\/check-prebuilds\.js --release$/),
        runIndex(publish, /^npm ci --ignore-scripts/),
        runIndex(publish, /^npm publish\b/),
      ];
      expect(publishOrder.every((index) => index >= 0), String(publishOrder)).toBe(true);
      expect([...publishOrder].sort((a, b) => a - b)).toEqual(publishOrder);
      expect(steps(publish, 'actions/download-artifact')[0].with).toEqual(download.with);
      expect(publish.steps[publishOrder[3]].env?.PREBUILDS_ONLY).toBe('1');
      expect(publish.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
      expect(gate.permissions).toEqual({ contents: 'read' });
    });

    it('the test-prebuild script it runs is PREBUILDS_ONLY=1 npm test', () => {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      expect(pkg.scripts['test-prebuild']).toBe('PREBUILDS_ONLY=1 npm test');
      expect(pkg.scripts.prebuild).toBe('node scripts/prebuild.js');
    });
  });
});

/**
 * The jobs cannot run here, so what each will run is checked against what exists: every file a step runs,
 * every npm script it calls (and the files and vitest projects those scripts name), and, for a job where
 * nothing may skip, every .ci/steps installer that a suite of npm test needs.
 */
describe('what every workflow job runs exists, and the strict ones install what their suites need', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const ciSteps = readdirSync(join(root, '.ci', 'steps')).filter((name) => name.endsWith('.sh')).sort().map((name) => `.ci/steps/${name}`);
  const suites = readdirSync(join(root, 'test')).filter((name) => name.endsWith('.test.ts')).map((name) => `test/${name}`);
  /** The vitest suites each .ci/steps file says (in its text) it installs for. */
  const servedBy = Object.fromEntries(ciSteps.map((step) => [step, [...new Set(readFileSync(join(root, step), 'utf8').match(/test\/[\w/.-]+\.test\.ts/g) ?? [])]]));
  const projects = (vitestConfig.test?.projects ?? []) as Array<{ test: { name: string; include: string[] } }>;

  /** Each shell command of a job's run steps, without env assignments and the sudo prefix. */
  function commandsOf(job: Job): Array<{ command: string; step: Step }> {
    return job.steps.flatMap((step) =>
      (step.run ?? '')
        .split(/\n|&&|;/)
        .map((command) => command.trim().replace(/^sudo -E env "PATH=\$PATH"\s+/, '').replace(/^(\w+=\S*\s+)+/, ''))
        .filter((command) => command !== '' && !command.startsWith('#'))
        .map((command) => ({ command, step })),
    );
  }

  /** Problems with one command: a file, script or project it names that does not exist. */
  function problemsOf(command: string, where: string): string[] {
    const problems: string[] = [];
    const words = command.split(/\s+/);
    const npmScript = /^npm (?:run(?:-script)? ([\w:-]+)|(test))\b/.exec(command);
    if (npmScript) {
      const name = npmScript[1] ?? npmScript[2];
      if (!(name in pkg.scripts)) problems.push(`${where}: npm script ${name} does not exist`);
      else if (!where.startsWith('package.json')) problems.push(...problemsOfScript(name, new Set()));
    }
    if (/^(node|bash)$/.test(words[0]) && words[1] && !words[1].startsWith('-') && !existsSync(join(root, words[1]))) problems.push(`${where}: ${words[1]} does not exist`);
    const vitest = /^(?:npx )?vitest run\b(.*)$/.exec(command);
    if (vitest) {
      const args = vitest[1].trim().split(/\s+/).filter(Boolean);
      for (const [index, arg] of args.entries()) {
        if (arg === '--project' && !projects.some((p) => p.test.name === args[index + 1])) problems.push(`${where}: no vitest project ${args[index + 1]}`);
        if (/\.test\.ts$/.test(arg) && !existsSync(join(root, arg))) problems.push(`${where}: ${arg} does not exist`);
      }
    }
    return problems;
  }

  /** Problems with an npm script and the scripts it calls (pre and post scripts too). */
  function problemsOfScript(name: string, seen: Set<string>): string[] {
    if (seen.has(name)) return [];
    seen.add(name);
    return [`pre${name}`, name, `post${name}`]
      .filter((script) => script in pkg.scripts)
      .flatMap((script) =>
        pkg.scripts[script]
          .split(/&&|;/)
          .map((command) => command.trim().replace(/^(\w+=\S*\s+)+/, ''))
          .flatMap((command) => {
            const called = /^npm (?:run(?:-script)? ([\w:-]+)|(test))\b/.exec(command);
            const own = problemsOf(command, `package.json scripts.${script}`);
            return called ? [...own, ...problemsOfScript(called[1] ?? called[2], seen)] : own;
          }),
      );
  }

  const jobs = files.flatMap((file) => Object.entries(load(file).workflow.jobs).map(([id, job]) => ({ file, id, job })));

  it.each(jobs.map(({ file, id, job }) => [`${file} ${id}`, job] as const))('%s: the files, npm scripts, vitest projects and test files it runs exist', (label, job) => {
    const problems = commandsOf(job).flatMap(({ command }) => problemsOf(command, `${label}: ${command}`));
    expect(problems).toEqual([]);
  });

  it('npm test runs the fast tier first and stops there if it fails, then the slow one; together they hold every suite', () => {
    expect(pkg.scripts.test).toBe('vitest run --project fast && vitest run --project slow');
    expect(pkg.scripts.pretest).toBe('npm run build:ts');
    expect(problemsOfScript('test', new Set())).toEqual([]);
    expect(projects.map((p) => p.test.name)).toEqual(['fast', 'slow']);
    expect(readdirSync(join(root, 'test', 'fast')).filter((name) => name.endsWith('.test.ts')).length).toBeGreaterThan(0);
  });

  it('every .ci/steps file names only suites that exist, and every suite that must run in CI is installed for by one', () => {
    for (const [step, named] of Object.entries(servedBy)) for (const suite of named) expect(existsSync(join(root, suite)), `${step} names ${suite}`).toBe(true);
    // Suites whose needs no step installs: node-versions needs root only and fetches its Node binaries itself.
    const needsNothingInstalled = ['test/node-versions.test.ts'];
    const mustRun = suites.filter((suite) => /\bmustRunInCi\(/.test(readFileSync(join(root, suite), 'utf8')));
    const uncovered = mustRun.filter((suite) => !needsNothingInstalled.includes(suite) && !Object.values(servedBy).some((named) => named.includes(suite)));
    expect(uncovered).toEqual([]);
  });

  /** Jobs where nothing may skip: .ci/run itself, or npm test / test-prebuild under TCP_KEEPALIVE_STRICT=1. */
  const strictJobs = jobs.filter(({ job }) =>
    job.steps.some((step) => step.run === 'bash .ci/run' || (/^npm (test|run test-prebuild)$/m.test(step.run ?? '') && step.env?.TCP_KEEPALIVE_STRICT === '1') || /TCP_KEEPALIVE_STRICT=1 npm/.test(step.run ?? '')),
  );

  it('the strict jobs are ci.yml debian and prebuild.yml release-gate', () => {
    expect(strictJobs.map(({ file, id }) => `${file} ${id}`).sort()).toEqual(['ci.yml debian', 'prebuild.yml release-gate']);
  });

  it.each(strictJobs.map(({ file, id, job }) => [`${file} ${id}`, job] as const))('%s: runs every .ci/steps installer a suite of npm test needs, in order, on the Debian 12 they are written for', (label, job) => {
    expect(job.container, label).toEqual({ image: 'debian:12', options: '--privileged' });
    if (job.steps.some((step) => step.run === 'bash .ci/run')) return; // .ci/run runs every step itself
    const called = commandsOf(job).map(({ command }) => /^bash (\.ci\/steps\/\S+)$/.exec(command)?.[1]).filter((step): step is string => step !== undefined);
    const needed = ciSteps.filter((step) => servedBy[step].length > 0);
    expect(called, `${label} calls the steps for the vitest suites, in .ci/run's order`).toEqual(needed);
    const left = ciSteps.filter((step) => !called.includes(step));
    for (const step of left) expect(servedBy[step], `${step}, left out, installs for no suite of npm test`).toEqual([]);
  });
});

describe('scripts/check-prebuilds.js, the release gate for binaries', () => {
  const tuple = `${process.platform}-${process.arch}`;
  const work = mkdtempSync(join(tmpdir(), 'tcp-keepalive-check-'));
  let built: string;

  beforeAll(async () => {
    await runOk(process.execPath, [join(root, 'scripts', 'prebuild.js'), '--if-stale'], { cwd: root });
    const name = readdirSync(join(root, 'prebuilds', tuple)).find((file) => file.endsWith('.node'))!;
    built = join(root, 'prebuilds', tuple, name);
  }, 300_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  function layout(entries: Record<string, Buffer | string>): string {
    const dir = mkdtempSync(join(work, 'prebuilds-'));
    for (const [file, content] of Object.entries(entries)) {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      if (typeof content === 'string') copyFileSync(content, join(dir, file));
      else writeFileSync(join(dir, file), content);
    }
    return dir;
  }

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('passes the prebuild built here, and wants the full set for a release', () => {
    const dir = layout({ 'linux-x64/tcp-keepalive.glibc.node': built });
    expect(checkPrebuilds(dir)).toEqual({ found: ['linux-x64/tcp-keepalive.glibc.node'], problems: [] });
    expect(checkPrebuilds(dir, { release: true }).problems).toEqual(RELEASE.filter((f) => f !== 'linux-x64/tcp-keepalive.glibc.node').map((f) => `${f}: missing`));
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('catches a binary in the wrong folder, a wrong libc tag, no tag, and a too-new glibc symbol', () => {
    const elf = readFileSync(built);
    const text = elf.toString('latin1');
    const tooNew = Buffer.from(text.replace(/GLIBC_2\.\d\d(?![.\d])/, 'GLIBC_2.99'), 'latin1');
    const dir = layout({
      'linux-arm64/tcp-keepalive.glibc.node': built,
      'linux-x64/tcp-keepalive.musl.node': built,
      'linux-x64/tcp-keepalive.node': built,
      'darwin-x64/tcp-keepalive.node': built,
      'win32-x64/tcp-keepalive.node': built,
      'linux-x64/tcp-keepalive.glibc.node': tooNew,
    });
    const { problems } = checkPrebuilds(dir);
    expect(problems).toEqual(expect.arrayContaining([
      'linux-arm64/tcp-keepalive.glibc.node: ELF machine 62, not arm64',
      "linux-x64/tcp-keepalive.musl.node: tagged musl but not linked against musl's libc",
      'linux-x64/tcp-keepalive.node: Linux prebuilds must be tagged glibc or musl',
      'darwin-x64/tcp-keepalive.node: not a 64-bit Mach-O file',
      'win32-x64/tcp-keepalive.node: not a PE file',
      expect.stringMatching(/^linux-x64\/tcp-keepalive\.glibc\.node: needs GLIBC_2\.9+, newer than 2\.28$/),
    ]));
    expect(problems).toHaveLength(6);
  });
});
