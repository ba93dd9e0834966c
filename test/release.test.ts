import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
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
    const { planFor } = createRequire(__filename)(join(root, 'test', 'portable', 'contract.js')) as { planFor(where: string): string[] };
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
    const builders = Object.entries(workflow.jobs).filter(([id]) => id !== 'publish');
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

    it('publishes only after every build, the release-set check and the whole suite against the prebuilds', () => {
      expect([publish.needs].flat().sort()).toEqual(builders.map(([id]) => id).sort());
      const [download] = steps(publish, 'actions/download-artifact');
      expect(download.with).toEqual({ pattern: 'prebuild-*', path: 'prebuilds', 'merge-multiple': true });
      const order = [
        publish.steps.indexOf(download),
        runIndex(publish, /^node scripts\/check-prebuilds\.js --release$/),
        runIndex(publish, /^npm ci --ignore-scripts/),
        runIndex(publish, /TCP_KEEPALIVE_STRICT=1 npm run test-prebuild/),
        runIndex(publish, /^npm publish\b/),
      ];
      expect(order.every((index) => index >= 0), String(order)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      expect(publish.steps[order[4]].env?.PREBUILDS_ONLY).toBe('1');
      expect(publish.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
    });

    it('the test-prebuild script it runs is PREBUILDS_ONLY=1 npm test', () => {
      const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
      expect(pkg.scripts['test-prebuild']).toBe('PREBUILDS_ONLY=1 npm test');
      expect(pkg.scripts.prebuild).toBe('node scripts/prebuild.js');
    });
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
