/**
 * Spilling the bodies of open blocks to disk (`bufferDir`, CLI `--buffer-to-disk`), so memory holds only
 * the chunk each open block is filling, not whole blocks.
 *
 * Every capture writes into its own run directory under the root, `run.<pid>.<random>.<host>`, so several
 * processes (scale-out on one consumer) can share a root. At start, a capture removes the run directories
 * of its own host whose process is gone: what a crashed run left behind. The host is part of the name
 * because containers sharing a volume have their own pid namespaces (every one may be pid 1): a pid is only
 * looked up on the host that wrote it. The files are scratch only: the archive's durability comes from the
 * store, and the messages of a crashed run were never acked, so the server redelivers them.
 *
 * A block gets a file once its encoder completed a chunk (~256 KiB); smaller blocks never touch the disk.
 * The hot path only queues chunks (SpillFile.append is synchronous); each file writes its queue in order,
 * one write at a time, opening the file for that write and closing it right after. A semaphore bounds the
 * files open at once over all blocks (`maxOpenFiles`, default 8), reads at seal included, so thousands of
 * open split keys need a handful of descriptors.
 *
 * A failed write (disk full, I/O error) loses nothing: the bytes confirmed before it stay valid in the file,
 * the failed batch and everything after it stay in memory (that block spills no more), and `onError` is told
 * (createCapture logs it). A failed read-back rejects the block's seal: the block fails and is never acked,
 * so its messages are redelivered.
 */
import { randomBytes } from 'node:crypto';
import { constants, mkdirSync } from 'node:fs';
import { open, readdir, rm, unlink } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** The part of a node FileHandle the spill files use; tests inject their own to count or fail. */
export interface SpillHandle {
  writev(buffers: Buffer[], position: number): Promise<{ bytesWritten: number }>;
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

export type SpillOperation = 'write' | 'read' | 'delete' | 'cleanup';

export interface SpillDirectoryOptions {
  /**
   * The shared root; this capture writes into a run directory of its own under it. Created when missing.
   * Processes sharing a root on different machines or containers need distinct host names.
   */
  root: string;
  /** Files open at once over all blocks (writes and reads). Default 8. */
  maxOpenFiles?: number;
  /** Told about every failed write, read, delete or cleanup (nothing is dropped because of one). */
  onError?: (error: unknown, info: { op: SpillOperation; path: string }) => void;
  /** Opens a file with numeric fs flags. Default: node:fs/promises open(). */
  openFile?: (path: string, flags: number) => Promise<SpillHandle>;
  /** Whether a process id is alive on this host. Default: process.kill(pid, 0). */
  isAlive?: (pid: number) => boolean;
}

/** Counters over the run, for the closing log line. */
export interface SpillStats {
  /** Blocks that started to spill (a file was opened for them). */
  files: number;
  bytesWritten: number;
  writeErrors: number;
}

export const DEFAULT_MAX_OPEN_FILES = 8;

/** The root the CLI's `--buffer-to-disk` uses without a value: `<tmpdir>/jetvault-spill`. */
export function defaultSpillRoot(): string {
  return join(tmpdir(), 'jetvault-spill');
}
/** At most this many chunks (~16 MiB) per write, so one busy block cannot hold a descriptor for long. */
const MAX_BATCH_CHUNKS = 64;
const RUN_DIR = /^run\.(\d+)\.[0-9a-f]{12}\.(.+)$/;

/** The name of a run directory of process `pid` on `host` (exported for tests that fake a crashed run). */
export function runDirName(pid: number, host = hostTag()): string {
  return `run.${pid}.${randomBytes(6).toString('hex')}.${host}`;
}

/** This host's name, reduced to characters safe in a file name. */
export function hostTag(): string {
  return (hostname() || 'localhost').replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 64);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A counting semaphore: at most `max` tasks run at once, the others wait in arrival order. */
class Slots {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  async run<R>(task: () => Promise<R>): Promise<R> {
    if (this.active < this.max) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      // The slot passes straight to the next waiter; `active` only drops when nobody waits.
      if (next) next();
      else this.active--;
    }
  }
}

/** What a SpillFile needs from its directory. */
interface SpillIo {
  readonly slots: Slots;
  readonly openFile: (path: string, flags: number) => Promise<SpillHandle>;
  readonly stats: SpillStats;
  report(error: unknown, op: SpillOperation, path: string): void;
  forget(file: SpillFile): void;
}

export class SpillDirectory {
  /** The shared root, absolute. */
  readonly root: string;
  /** This capture's own run directory under the root. */
  readonly dir: string;
  readonly stats: SpillStats = { files: 0, bytesWritten: 0, writeErrors: 0 };
  private readonly io: SpillIo;
  private readonly isAlive: (pid: number) => boolean;
  private readonly live = new Set<SpillFile>();
  private sweeping: Promise<string[]> | undefined;
  private closing: Promise<void> | undefined;
  private nextFile = 0;

  /** Creates the run directory at once (synchronously), so an unusable root fails before the capture starts. */
  constructor(options: SpillDirectoryOptions) {
    const maxOpenFiles = options.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES;
    if (!Number.isSafeInteger(maxOpenFiles) || maxOpenFiles < 1) throw new RangeError(`maxOpenFiles must be a positive integer, got ${maxOpenFiles}`);
    this.root = resolve(options.root);
    mkdirSync(this.root, { recursive: true });
    this.dir = join(this.root, runDirName(process.pid));
    mkdirSync(this.dir);
    this.isAlive = options.isAlive ?? processAlive;
    const onError = options.onError ?? (() => undefined);
    this.io = {
      slots: new Slots(maxOpenFiles),
      openFile: options.openFile ?? ((path, flags) => open(path, flags)),
      stats: this.stats,
      report: (error, op, path) => {
        if (op === 'write') this.stats.writeErrors++;
        try {
          onError(error, { op, path });
        } catch {
          // A failing reporter must not break the write queue (it would reject with nobody listening).
        }
      },
      forget: (file) => this.live.delete(file),
    };
  }

  /**
   * A file for one block's body. Nothing touches the disk until the first append; `onWritten(bytes)` is
   * called each time bytes are confirmed on disk (they have left memory), never after discard().
   */
  createFile(onWritten: (bytes: number) => void = () => undefined): SpillFile {
    const file = new SpillFile(this.io, join(this.dir, `${++this.nextFile}.block`), onWritten);
    this.live.add(file);
    return file;
  }

  /**
   * Removes what crashed runs left under the root: run directories of this host whose process is gone.
   * Other entries, other hosts' runs and live runs are left alone. Resolves to the directories removed;
   * a directory that cannot be removed is reported to onError and skipped.
   */
  removeLeftovers(): Promise<string[]> {
    this.sweeping ??= this.sweep();
    return this.sweeping;
  }

  /** Discards every file, waits for their writes, and removes the run directory. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.live].map((file) => file.discard()));
      await this.sweeping;
      try {
        await rm(this.dir, { recursive: true, force: true });
      } catch (error) {
        this.io.report(error, 'cleanup', this.dir);
      }
    })();
    return this.closing;
  }

  private async sweep(): Promise<string[]> {
    const host = hostTag();
    const removed: string[] = [];
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch (error) {
      this.io.report(error, 'cleanup', this.root);
      return removed;
    }
    for (const name of entries) {
      const match = RUN_DIR.exec(name);
      if (!match || match[2] !== host) continue;
      const pid = Number(match[1]);
      if (pid === process.pid || this.isAlive(pid)) continue;
      const path = join(this.root, name);
      try {
        await rm(path, { recursive: true, force: true });
        removed.push(path);
      } catch (error) {
        this.io.report(error, 'cleanup', path);
      }
    }
    return removed;
  }
}

/**
 * One block's body on disk: chunks appended in order, written by one write at a time; the file's valid
 * prefix is `diskBytes` long. After a failed write the rest of the body stays in memory (`kept`).
 */
export class SpillFile {
  /** Bytes confirmed on disk, the valid prefix of the file. */
  diskBytes = 0;
  /** Chunks waiting for the next write. */
  private queue: Buffer[] = [];
  /** After a failed write: the bytes that follow the valid prefix, in order, kept in memory. */
  private kept: Buffer[] | undefined;
  private writing: Promise<void> | undefined;
  private discarding: Promise<void> | undefined;
  /** Whether the file may exist (an open with O_CREAT was tried). */
  private touched = false;

  constructor(
    private readonly io: SpillIo,
    readonly path: string,
    private readonly onWritten: (bytes: number) => void,
  ) {}

  /** True once a write failed: the rest of this body stays in memory. */
  get failed(): boolean {
    return this.kept !== undefined;
  }

  /** Queues chunks after those appended before; synchronous, never throws. Ignored after discard(). */
  append(chunks: readonly Buffer[]): void {
    if (this.discarding) return;
    const target = this.kept ?? this.queue;
    for (const chunk of chunks) if (chunk.length > 0) target.push(chunk);
    if (this.kept === undefined && this.writing === undefined && this.queue.length > 0) {
      this.writing = this.writeQueue().finally(() => {
        this.writing = undefined;
      });
    }
  }

  /**
   * The whole body appended so far, in order: the file's valid prefix read back (one buffer), then what a
   * failed write left in memory. Waits for the writes in flight first. Rejects when the file cannot be read.
   */
  async readAll(): Promise<Buffer[]> {
    await this.settled();
    if (this.discarding) throw new Error(`spill file ${this.path} was discarded before it was read back`);
    const parts: Buffer[] = [];
    if (this.diskBytes > 0) parts.push(await this.readPrefix(this.diskBytes));
    if (this.kept) parts.push(...this.kept);
    // Appends after this point must not reach the disk behind an already returned body.
    if (this.queue.length > 0) parts.push(...this.queue.splice(0));
    return parts;
  }

  /**
   * Drops what is not written yet, waits for the write in flight and deletes the file. Idempotent; never
   * rejects (a failed delete goes to onError, and the run directory is removed at close anyway).
   */
  discard(): Promise<void> {
    this.discarding ??= (async () => {
      this.queue = [];
      this.kept = undefined;
      await this.settled();
      if (this.touched) {
        try {
          await unlink(this.path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.io.report(error, 'delete', this.path);
        }
      }
      this.io.forget(this);
    })();
    return this.discarding;
  }

  /** Resolves once the queue is written, or kept in memory after a failed write. Never rejects. */
  async settled(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Writes the queue in batches until it is empty, a write fails, or the file is discarded. Never rejects. */
  private async writeQueue(): Promise<void> {
    while (this.queue.length > 0 && this.kept === undefined && !this.discarding) {
      const batch = this.queue.splice(0, MAX_BATCH_CHUNKS);
      try {
        const bytes = await this.io.slots.run(() => this.writeAt(batch, this.diskBytes));
        this.diskBytes += bytes;
        this.io.stats.bytesWritten += bytes;
        if (!this.discarding) this.onWritten(bytes);
      } catch (error) {
        if (this.discarding) return;
        // Nothing of the batch counts as written: it and everything queued after it stay in memory.
        this.kept = [...batch, ...this.queue];
        this.queue = [];
        this.io.report(error, 'write', this.path);
      }
    }
  }

  private async writeAt(chunks: Buffer[], position: number): Promise<number> {
    if (!this.touched) {
      this.touched = true;
      this.io.stats.files++;
    }
    const handle = await this.io.openFile(this.path, constants.O_WRONLY | constants.O_CREAT);
    let bytes: number;
    try {
      bytes = await writeFully(handle, chunks, position);
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
    // A failed close can mean a failed write (NFS, quotas): the bytes only count once it succeeded.
    await handle.close();
    return bytes;
  }

  private readPrefix(length: number): Promise<Buffer> {
    return this.io.slots.run(async () => {
      try {
        const handle = await this.io.openFile(this.path, constants.O_RDONLY);
        try {
          const body = Buffer.allocUnsafe(length);
          for (let offset = 0; offset < length; ) {
            const { bytesRead } = await handle.read(body, offset, length - offset, offset);
            if (bytesRead <= 0) throw new Error(`spill file ${this.path} ends after ${offset} of ${length} bytes`);
            offset += bytesRead;
          }
          return body;
        } finally {
          await handle.close();
        }
      } catch (error) {
        this.io.report(error, 'read', this.path);
        throw error;
      }
    });
  }
}

/** Writes every byte of `chunks` at `position`, going on after short writes. Resolves to the bytes written. */
async function writeFully(handle: SpillHandle, chunks: Buffer[], position: number): Promise<number> {
  let total = 0;
  for (const chunk of chunks) total += chunk.length;
  let rest = chunks;
  for (let written = 0; written < total; ) {
    const { bytesWritten } = await handle.writev(rest, position + written);
    if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} with ${total - written} bytes left`);
    written += bytesWritten;
    rest = skipBytes(rest, bytesWritten);
  }
  return total;
}

function skipBytes(chunks: Buffer[], bytes: number): Buffer[] {
  let i = 0;
  let left = bytes;
  while (i < chunks.length && left >= (chunks[i] as Buffer).length) left -= (chunks[i++] as Buffer).length;
  const rest = chunks.slice(i);
  if (left > 0 && rest[0]) rest[0] = rest[0].subarray(left);
  return rest;
}
