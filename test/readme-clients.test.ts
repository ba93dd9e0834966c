import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './support/run';

/**
 * Every TypeScript snippet of the recipe pages (docs/drivers.md, how-it-works.md, observability.md) compiles under `strict`, against the
 * built types (dist/) and the real drivers' own types, with no cast: a recipe that does not type-check is
 * worse than none.
 */

const root = join(__dirname, '..');

/** The pages whose TypeScript snippets are recipes users copy: each must compile as it stands. */
const PAGES = ['docs/drivers.md', 'docs/how-it-works.md', 'docs/observability.md'];

function snippets(): string[] {
  return PAGES.flatMap((page) => {
    const text = readFileSync(join(root, page), 'utf8');
    return [...text.matchAll(/^( *)```ts\n([\s\S]*?)^\1```/gm)].map(([, indent, code]) => code.replace(new RegExp(`^${indent}`, 'gm'), ''));
  });
}

describe('the recipes in docs/ (drivers, the default, observability)', () => {
  it('every snippet compiles under strict TypeScript, with no cast', async () => {
    const found = snippets();
    expect(found.length).toBeGreaterThanOrEqual(3);
    const dir = mkdtempSync(join(tmpdir(), 'tcpka-readme-'));
    try {
      const files = found.map((code, index) => {
        expect(code, `snippet ${index + 1}`).not.toMatch(/\bas (any|unknown|never)\b|@ts-/);
        const file = join(dir, `snippet-${index + 1}.ts`);
        writeFileSync(file, `${code}\nexport {};\n`);
        return file;
      });
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            strict: true,
            noEmit: true,
            target: 'ES2022',
            module: 'commonjs',
            moduleResolution: 'node',
            esModuleInterop: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
            baseUrl: dir,
            paths: { 'tcp-keepalive': [join(root, 'dist', 'index.d.ts')], '*': [join(root, 'node_modules', '*'), join(root, 'node_modules', '@types', '*')] },
          },
          files,
        }),
      );
      const tsc = await run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')]);
      expect(`${tsc.stdout}${tsc.stderr}`, 'tsc reported errors').toBe('');
      expect(tsc.status, `tsc exit ${tsc.status ?? tsc.signal ?? tsc.error}`).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
