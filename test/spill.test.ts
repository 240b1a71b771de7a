/** The spill writer (src/capture/spill.ts): order, bounded descriptors, cleanup, failed writes and reads. */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hostTag, runDirName, SpillDirectory, type SpillDirectoryOptions, type SpillHandle, type SpillOperation } from '../src/capture/spill.js';

const roots: string[] = [];
const dirs: SpillDirectory[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => d.close()));
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'jv-spill-test-'));
  roots.push(root);
  return root;
}

function spillDir(options: Partial<SpillDirectoryOptions> = {}): SpillDirectory {
  const dir = new SpillDirectory({ root: options.root ?? newRoot(), ...options });
  dirs.push(dir);
  return dir;
}

/** Distinct bytes per chunk, so a chunk out of place or written twice shows. */
function chunk(label: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (label * 31 + i * 7) & 0xff;
  b.writeUInt32LE(label, 0);
  return b;
}

const errnoError = (code: string) => Object.assign(new Error(`${code}: injected`), { code });

/** Opens real files, counting the descriptors open at once. */
function countingOpen() {
  const state = { open: 0, peak: 0, opens: 0 };
  const openFile = async (path: string, flags: number): Promise<SpillHandle> => {
    const handle = await open(path, flags);
    state.opens++;
    state.open++;
    state.peak = Math.max(state.peak, state.open);
    return {
      writev: (buffers, position) => handle.writev(buffers, position),
      read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
      close: async () => {
        state.open--;
        await handle.close();
      },
    };
  };
  return { state, openFile };
}

describe('spill file', () => {
  it('writes chunks in the order appended, also when appended while a write is in flight, and reads them back', async () => {
    const dir = spillDir();
    const written: number[] = [];
    const file = dir.createFile((bytes) => written.push(bytes));
    const chunks = Array.from({ length: 40 }, (_, i) => chunk(i, 1000 + i * 37));
    file.append(chunks.slice(0, 3)); // starts the first write
    file.append(chunks.slice(3, 10)); // queued behind it
    await Promise.resolve();
    file.append([Buffer.alloc(0), ...chunks.slice(10, 25)]); // an empty chunk is skipped
    await file.settled();
    file.append(chunks.slice(25)); // after the queue ran dry: a new write at the end
    await file.settled();

    const body = Buffer.concat(chunks);
    expect(file.diskBytes).toBe(body.length);
    expect(written.reduce((a, b) => a + b, 0)).toBe(body.length);
    expect(written.length).toBeGreaterThan(1);
    expect(readFileSync(file.path).equals(body)).toBe(true);
    const back = await file.readAll();
    expect(back).toHaveLength(1);
    expect(Buffer.concat(back).equals(body)).toBe(true);
    expect(file.failed).toBe(false);
  });

  it('goes on after short writes (the kernel may write less than asked)', async () => {
    const short = async (path: string, flags: number): Promise<SpillHandle> => {
      const handle = await open(path, flags);
      return {
        // At most 1,000 bytes per call, wherever the chunk boundaries are.
        writev: (buffers, position) => handle.write(Buffer.concat(buffers).subarray(0, 1_000), 0, Math.min(1_000, Buffer.concat(buffers).length), position),
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        close: () => handle.close(),
      };
    };
    const file = spillDir({ openFile: short }).createFile();
    const chunks = [chunk(1, 2_500), chunk(2, 10), chunk(3, 3_333)];
    file.append(chunks);
    const back = await file.readAll();
    expect(Buffer.concat(back).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('keeps at most maxOpenFiles descriptors open over 300 files written at once, and closes every one', async () => {
    const { state, openFile } = countingOpen();
    const dir = spillDir({ maxOpenFiles: 3, openFile });
    const files = Array.from({ length: 300 }, () => dir.createFile());
    files.forEach((file, i) => file.append([chunk(i, 2_000), chunk(i + 1_000, 500)]));
    files.forEach((file, i) => file.append([chunk(i + 2_000, 700)]));
    const bodies = await Promise.all(files.map((file) => file.readAll()));
    bodies.forEach((parts, i) => expect(Buffer.concat(parts).equals(Buffer.concat([chunk(i, 2_000), chunk(i + 1_000, 500), chunk(i + 2_000, 700)]))).toBe(true));
    expect(state.peak).toBeLessThanOrEqual(3);
    expect(state.peak).toBe(3); // the limit is used, not serialised to one
    expect(state.opens).toBeGreaterThanOrEqual(600); // every file opened to write and to read
    expect(state.open).toBe(0);
    expect(readdirSync(dir.dir)).toHaveLength(300);
    await Promise.all(files.map((file) => file.discard()));
    expect(readdirSync(dir.dir)).toEqual([]);
  });

  it('a failed write (disk full) keeps the rest of the body in memory, in order, and reports it', async () => {
    const errors: Array<{ op: SpillOperation; code: string }> = [];
    let writes = 0;
    const fullAfterOne = async (path: string, flags: number): Promise<SpillHandle> => {
      const handle = await open(path, flags);
      return {
        writev: async (buffers, position) => {
          if (++writes >= 2) {
            // Part of the batch reaches the file before the disk fills: those bytes must not count.
            await handle.write(buffers[0]!.subarray(0, 10), 0, 10, position);
            throw errnoError('ENOSPC');
          }
          return handle.writev(buffers, position);
        },
        read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
        close: () => handle.close(),
      };
    };
    const dir = spillDir({ openFile: fullAfterOne, onError: (error, { op }) => errors.push({ op, code: (error as NodeJS.ErrnoException).code ?? '' }) });
    const written: number[] = [];
    const file = dir.createFile((bytes) => written.push(bytes));
    const chunks = [chunk(1, 4_000), chunk(2, 3_000), chunk(3, 2_000), chunk(4, 1_000)];
    file.append(chunks.slice(0, 1));
    await file.settled();
    file.append(chunks.slice(1, 3)); // this write fails
    await file.settled();
    file.append(chunks.slice(3)); // straight into memory: no more writes for this block
    await file.settled();

    expect(errors).toEqual([{ op: 'write', code: 'ENOSPC' }]);
    expect(file.failed).toBe(true);
    expect(writes).toBe(2);
    expect(written).toEqual([4_000]); // only what was confirmed left memory
    expect(file.diskBytes).toBe(4_000);
    expect(dir.stats).toMatchObject({ files: 1, bytesWritten: 4_000, writeErrors: 1 });
    const back = await file.readAll();
    expect(Buffer.concat(back).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('a failed read-back rejects and is reported, instead of returning a short body', async () => {
    const errors: SpillOperation[] = [];
    const unreadable = async (path: string, flags: number): Promise<SpillHandle> => {
      if (flags === 0) throw errnoError('EIO'); // O_RDONLY
      return open(path, flags);
    };
    const file = spillDir({ openFile: unreadable, onError: (_e, { op }) => errors.push(op) }).createFile();
    file.append([chunk(1, 5_000)]);
    await expect(file.readAll()).rejects.toThrow(/EIO/);
    expect(errors).toEqual(['read']);
  });

  it('a file cut short on disk rejects at read-back', async () => {
    const file = spillDir().createFile();
    file.append([chunk(1, 5_000)]);
    await file.settled();
    writeFileSync(file.path, chunk(1, 5_000).subarray(0, 4_000));
    await expect(file.readAll()).rejects.toThrow(/ends after 4000 of 5000 bytes/);
  });

  it('discard() waits for the write in flight, drops what is queued and deletes the file; reading afterwards rejects', async () => {
    const { state, openFile } = countingOpen();
    const dir = spillDir({ openFile });
    const written: number[] = [];
    const file = dir.createFile((bytes) => written.push(bytes));
    file.append([chunk(1, 3_000)]);
    file.append([chunk(2, 3_000)]);
    await file.discard();
    expect(existsSync(file.path)).toBe(false);
    expect(state.open).toBe(0);
    expect(written).toEqual([]); // nothing reported after discard
    file.append([chunk(3, 100)]); // ignored
    await file.settled();
    expect(existsSync(file.path)).toBe(false);
    await expect(file.readAll()).rejects.toThrow(/discarded/);
    expect(readdirSync(dir.dir)).toEqual([]);
  });

  it('a block that never appended creates no file', async () => {
    const dir = spillDir();
    const file = dir.createFile();
    expect(await file.readAll()).toEqual([]);
    await file.discard();
    expect(readdirSync(dir.dir)).toEqual([]);
    expect(dir.stats.files).toBe(0);
  });
});

describe('spill directory', () => {
  it('uses a run directory of its own, named by pid and host, and removes it with its files at close', async () => {
    const root = newRoot();
    const a = spillDir({ root });
    const b = spillDir({ root });
    expect(a.dir).not.toBe(b.dir);
    for (const d of [a, b]) expect(d.dir.startsWith(join(root, `run.${process.pid}.`)) && d.dir.endsWith(`.${hostTag()}`)).toBe(true);
    const file = a.createFile();
    file.append([chunk(1, 1_000)]);
    await file.settled();
    expect(readdirSync(a.dir)).toHaveLength(1);
    await a.close();
    expect(existsSync(a.dir)).toBe(false);
    expect(existsSync(b.dir)).toBe(true);
  });

  it('creates a missing root, and refuses a root that is a file', () => {
    const root = join(newRoot(), 'deeper', 'spill');
    expect(existsSync(spillDir({ root }).dir)).toBe(true);
    const file = join(newRoot(), 'a-file');
    writeFileSync(file, 'x');
    expect(() => new SpillDirectory({ root: file })).toThrow(/EEXIST|ENOTDIR/);
  });

  it("removes leftovers of this host's dead runs only: not live runs, its own, other hosts' or foreign entries", async () => {
    const root = newRoot();
    const dead = join(root, runDirName(4_000_001));
    const alive = join(root, runDirName(4_000_002));
    const otherHost = join(root, runDirName(4_000_001, 'some-other-host'));
    const foreign = join(root, 'not-a-run');
    const mine = join(root, runDirName(process.pid));
    for (const d of [dead, alive, otherHost, foreign, mine]) {
      mkdirSync(d);
      writeFileSync(join(d, '1.block'), 'scratch');
    }
    const spill = spillDir({ root, isAlive: (pid) => pid === 4_000_002 });
    expect(await spill.removeLeftovers()).toEqual([dead]);
    expect(readdirSync(root).sort()).toEqual([alive, otherHost, foreign, mine, spill.dir].map((d) => d.slice(root.length + 1)).sort());
  });

  it('tells dead pids from live ones by default (an exited child is dead, the parent process alive)', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const deadPid = child.pid!;
    await exited;
    const root = newRoot();
    const dead = join(root, runDirName(deadPid));
    const alive = join(root, runDirName(process.ppid));
    mkdirSync(dead);
    mkdirSync(alive);
    expect(await spillDir({ root }).removeLeftovers()).toEqual([dead]);
    expect(existsSync(alive)).toBe(true);
  });
});
