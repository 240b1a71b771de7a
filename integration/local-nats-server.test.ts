/**
 * The nats-server helper used by `jetvault demo`, the bench and these tests: a process that dies without
 * disposing its servers (an uncaught error) must not leave them running, nor their store dirs behind.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/src/cli/local-nats-server.js');

/** Whether a process with this pid is still alive (a zombie counts as gone). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

describe.skipIf(!existsSync(MODULE))('startNatsServer', () => {
  it('kills the servers and removes the store dirs of a process that crashed without disposing them', async () => {
    const script = [
      `const { startNatsServer } = await import(${JSON.stringify(pathToFileURL(MODULE).href)});`,
      'const s = await startNatsServer();',
      'const { execSync } = await import("node:child_process");',
      // Anchored on the binary, so the shell running pgrep does not match too.
      'const pid = execSync(`pgrep -f -- "^[^ ]*nats-server .*-sd ${s.storeDir}"`).toString().trim();',
      'console.log(JSON.stringify({ dir: s.storeDir, pid: Number(pid) }));',
      'throw new Error("crash on purpose");',
    ].join('\n');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(run.stderr).toContain('crash on purpose');
    const { dir, pid } = JSON.parse(run.stdout.trim()) as { dir: string; pid: number };
    expect(pid).toBeGreaterThan(0);
    try {
      const deadline = Date.now() + 5_000;
      while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(alive(pid)).toBe(false);
      expect(existsSync(dir)).toBe(false);
    } finally {
      // When this fails, it must not leave the very orphan it looks for.
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
