/**
 * The built CLI looking into an archive and reporting progress: `ls` and `cat` on an archive that
 * `capture --once` wrote from a real nats-server, progress lines of capture/restore/verify on a non-TTY
 * stderr (and none with --quiet), and `--log-format pretty` with secrets scrubbed. `npm test` builds first.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseTimeIso } from '../src/archive/envelope.js';
import { CLI, jetvault, type CliRun } from './helpers/cli.js';
import { useServerPair } from './helpers/archive.js';
import { uniqueName } from './helpers/nats-server.js';
import { mixedMessages, publishAll } from './helpers/streams.js';

const built = existsSync(CLI);

/** The contract for every failure: the exit code, at most 3 stderr lines, no stack frames, the problem named. */
function expectCleanError(run: CliRun, code: number, names: RegExp): void {
  const lines = run.stderr.split('\n').filter((l) => l.trim() !== '');
  expect({ code: run.code, stderr: run.stderr }).toMatchObject({ code });
  expect(lines.length, run.stderr).toBeGreaterThan(0);
  expect(lines.length, run.stderr).toBeLessThanOrEqual(3);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stderr).toMatch(names);
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

const COUNT = 3000;
const PER_BLOCK = 1000;

describe.skipIf(!built)('jetvault ls, cat and progress', () => {
  const pair = useServerPair('inspect');
  const stream = uniqueName('INSPECT');
  const subjects = ['eu', 'us', 'apac'].map((r) => `${stream}.${r}`);
  const messages = mixedMessages(COUNT, subjects);
  /** Appears in the archive's path and, as an AccountKey, in a credential variable: it must never be logged. */
  const secret = `s3cr3t${Math.random().toString(36).slice(2, 12)}`;
  let dir: string;
  let capture: CliRun;

  beforeAll(async () => {
    await pair.source.jsm.streams.add({ name: stream, subjects: [`${stream}.>`] });
    await publishAll(pair.source.nc, stream, messages);
    dir = path.join(pair.tempDir(), `archive-${secret}`);
    capture = await jetvault(['capture', '--server', pair.source.server.url, '--stream', stream, '--store', dir, '--once', '--max-messages', String(PER_BLOCK), '--split-by', 'none', '--compression', 'gzip']);
  });

  it('capture --once stores everything and ends its progress with a final line on stderr', () => {
    expect(capture.code, capture.stderr).toBe(0);
    expect(capture.stdout).toMatch(new RegExp(`^captured ${COUNT} messages in 3 blocks `));
    expect(capture.stderr).toMatch(new RegExp(`^capture: ${COUNT}/${COUNT} messages \\(100%\\), \\d+ msg/s, done in [\\d.]+ s$`, 'm'));
    expect(capture.stdout).not.toMatch(/msg\/s/);
  });

  describe('ls', () => {
    it('prints an aligned table of the blocks in key order and a totals line', async () => {
      const run = await jetvault(['ls', '--from', dir]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toBe('');
      const out = lines(run.stdout);
      expect(out).toHaveLength(1 + 3 + 1);
      expect(out[0]).toMatch(/^KEY\s+SEQ\s+MESSAGES\s+STORED\s+RATIO\s+TIME$/);
      const rows = out.slice(1, 4);
      expect(rows.map((r) => r.split(/\s+/)[1])).toEqual(['1..1000', '1001..2000', '2001..3000']);
      expect(rows.map((r) => r.split(/\s+/)[2])).toEqual(['1000', '1000', '1000']);
      for (const row of rows) expect(row).toMatch(/^\S+\.jv\.gz\s+\S+\s+1000\s+\d+\s+\d+\.\d\dx\s+\S+Z\.\.\S+Z$/);
      // Aligned: every column starts at the same position in each line.
      expect(new Set(out.slice(0, 4).map((l) => l.indexOf(l.split(/\s+/)[5]!))).size).toBe(1);
      expect(out[4]).toMatch(new RegExp(`^total: 3 blocks, ${COUNT} messages, seq 1\\.\\.${COUNT}, \\d+ bytes stored \\(\\d+\\.\\d\\dx\\), \\S+Z\\.\\.\\S+Z$`));
    });

    it('--json prints one object per block whose counts add up', async () => {
      const run = await jetvault(['ls', '--from', dir, '--json', '--source-stream', stream]);
      expect(run.code, run.stderr).toBe(0);
      const rows = lines(run.stdout).map((l) => JSON.parse(l) as { key: string; messages: number; firstSeq: number; storedBytes: number; encodedBytes: number; ratio: number; stream: string });
      expect(rows).toHaveLength(3);
      expect(rows.reduce((n, r) => n + r.messages, 0)).toBe(COUNT);
      expect(rows.map((r) => r.firstSeq)).toEqual([1, 1001, 2001]);
      expect(rows.map((r) => r.key)).toEqual([...rows.map((r) => r.key)].sort());
      for (const r of rows) {
        expect(r.stream).toBe(stream);
        expect(r.ratio).toBeCloseTo(r.encodedBytes / r.storedBytes, 2);
      }
    });

    it('an empty archive or an unknown stream is JV_ARCHIVE_EMPTY, exit 1, one line', async () => {
      const empty = pair.tempDir();
      expectCleanError(await jetvault(['ls', '--from', empty]), 1, /no archived blocks.*JV_ARCHIVE_EMPTY/);
      expectCleanError(await jetvault(['ls', '--from', dir, '--source-stream', 'NOPE']), 1, new RegExp(`"NOPE".*it holds: ${stream}.*JV_ARCHIVE_EMPTY`));
    });
  });

  describe('cat', () => {
    const keys = async () => lines((await jetvault(['ls', '--from', dir, '--json'])).stdout).map((l) => (JSON.parse(l) as { key: string }).key);

    it('prints exactly --limit messages as NDJSON matching the stream', async () => {
      const key = (await keys())[1]!;
      const run = await jetvault(['cat', '--from', dir, '--block', key, '--limit', '5']);
      expect(run.code, run.stderr).toBe(0);
      const printed = lines(run.stdout).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(printed).toHaveLength(5);
      for (const [i, line] of printed.entries()) {
        const seq = 1001 + i;
        const original = messages[seq - 1]!;
        const stored = await pair.source.jsm.streams.getMessage(stream, { seq });
        expect(Object.keys(line)).toEqual(['stream', 'seq', 'subject', 'time', 'deliveryCount', 'headers', 'data']);
        expect(line).toMatchObject({ stream, seq, subject: original.subject, deliveryCount: 1, headers: original.headers });
        expect(Buffer.from(line.data as string, 'base64').equals(Buffer.from(original.data))).toBe(true);
        expect(parseTimeIso(line.time as string)).toBe(parseTimeIso(stored!.timestamp));
        expect(line.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
      }
    });

    it('--data utf8 prints text payloads as strings and marks the others base64', async () => {
      const key = (await keys())[0]!;
      const run = await jetvault(['cat', '--from', dir, '--block', key, '--data', 'utf8']);
      expect(run.code, run.stderr).toBe(0);
      const printed = lines(run.stdout).map((l) => JSON.parse(l) as { seq: number; data: string; dataEncoding?: string });
      expect(printed).toHaveLength(PER_BLOCK);
      const kinds = new Set<string>();
      for (const line of printed) {
        const original = Buffer.from(messages[line.seq - 1]!.data);
        if (line.dataEncoding === 'base64') {
          kinds.add('base64');
          expect(Buffer.from(line.data, 'base64').equals(original)).toBe(true);
          expect(original[0]).toBe(0xff);
        } else {
          kinds.add('utf8');
          expect(line.dataEncoding).toBeUndefined();
          expect(Buffer.from(line.data, 'utf8').equals(original)).toBe(true);
        }
      }
      expect([...kinds].sort()).toEqual(['base64', 'utf8']);
    });

    it('an unknown block key: exit 1, one line naming it', async () => {
      const run = await jetvault(['cat', '--from', dir, '--block', `${stream}/no/such-block.jv.gz`]);
      expectCleanError(run, 1, new RegExp(`no block "${stream}/no/such-block\\.jv\\.gz".*JV_STORE_NOT_FOUND`));
      expect(lines(run.stderr)).toHaveLength(1);
      expect(run.stdout).toBe('');
    });

    it('a corrupt block: exit 1 naming it, nothing printed', async () => {
      const key = (await keys())[2]!;
      const copy = pair.tempDir();
      for (const name of [key, `${key}.manifest.json`]) {
        mkdirSync(path.dirname(path.join(copy, name)), { recursive: true });
        copyFileSync(path.join(dir, name), path.join(copy, name));
      }
      const bytes = readFileSync(path.join(copy, key));
      const middle = bytes.length >> 1;
      bytes[middle] = bytes[middle]! ^ 0xff;
      writeFileSync(path.join(copy, key), bytes);
      const run = await jetvault(['cat', '--from', copy, '--block', key]);
      expectCleanError(run, 1, new RegExp(`block ${key.replace(/[.]/g, '\\.')} is corrupt.*JV_BLOCK_CORRUPT`));
      expect(run.stdout).toBe('');
    });

    it('usage errors: exit 2, one line', async () => {
      expectCleanError(await jetvault(['cat', '--from', dir]), 2, /required option '--block <key>'/);
      expectCleanError(await jetvault(['cat', '--from', dir, '--block', 'x', '--limit', '0']), 2, /--limit must be a positive integer/);
      expectCleanError(await jetvault(['cat', '--from', dir, '--block', 'x', '--data', 'hex']), 2, /--data.*'hex'/);
      expectCleanError(await jetvault(['ls']), 2, /required option '--from <uri>'/);
    });
  });

  describe('progress on a non-TTY stderr', () => {
    const finalLine = (command: string) => new RegExp(`^${command}: ${COUNT}/${COUNT} messages \\(100%\\), \\d+ msg/s, done in [\\d.]+ s$`, 'm');

    it('restore ends with a final progress line; stdout holds only the summary; --quiet removes it', async () => {
      const target = pair.target.server.url;
      const run = await jetvault(['restore', '--from', dir, '--server', target, '--stream', `${stream}_R`]);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(finalLine('restore'));
      expect(lines(run.stdout)).toEqual([expect.stringMatching(new RegExp(`^restored ${COUNT} messages from 3 blocks into ${stream}_R \\(created\\)`))]);

      // The restored stream takes the archived subjects: make room for the next restore on the same server.
      await pair.target.jsm.streams.delete(`${stream}_R`);
      const quiet = await jetvault(['restore', '--from', dir, '--server', target, '--stream', `${stream}_Q`, '--quiet']);
      expect(quiet.code, quiet.stderr).toBe(0);
      expect(quiet.stderr).toBe('');
      expect(quiet.stdout).toMatch(/^restored 3000 messages/);
    });

    it('verify ends with a final progress line; --quiet removes it', async () => {
      const args = ['verify', '--from', dir, '--server', pair.source.server.url, '--stream', stream];
      const run = await jetvault(args);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(finalLine('verify'));
      expect(run.stdout).toBe(`verified: ${COUNT} messages identical in ${stream} (sequence mode)\n`);
      const quiet = await jetvault([...args, '--quiet']);
      expect(quiet.code, quiet.stderr).toBe(0);
      expect(quiet.stderr).toBe('');
    });
  });

  describe('--log-format', () => {
    const env = { AZURE_STORAGE_CONNECTION_STRING: `DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=${secret};EndpointSuffix=core.windows.net` };

    it('pretty prints human lines, not JSON, with secrets scrubbed', async () => {
      const run = await jetvault(['ls', '--from', dir, '--log-format', 'pretty', '--log-level', 'info'], { env });
      expect(run.code, run.stderr).toBe(0);
      const err = lines(run.stderr);
      expect(err.length).toBeGreaterThan(0);
      for (const line of err) expect(() => JSON.parse(line)).toThrow();
      expect(run.stderr).toMatch(/INFO.*listed archive/);
      // The store path holds the secret: it is logged, and scrubbed.
      expect(run.stderr).toContain('archive-***');
      expect(run.stderr).not.toContain(secret);
    });

    it('json (the default) prints JSON lines, scrubbed the same way', async () => {
      const run = await jetvault(['ls', '--from', dir, '--log-level', 'info'], { env });
      expect(run.code, run.stderr).toBe(0);
      const err = lines(run.stderr).map((l) => JSON.parse(l) as { msg: string; store: string });
      expect(err.find((l) => l.msg === 'listed archive')?.store).toMatch(/archive-\*\*\*$/);
      expect(run.stderr).not.toContain(secret);
    });

    it('is offered by every command that logs; --quiet by those that report progress', async () => {
      for (const command of ['capture', 'restore', 'verify', 'ls', 'cat']) {
        const help = await jetvault([command, '--help']);
        expect(help.stdout).toContain('--log-format <format>');
        if (command !== 'ls' && command !== 'cat') expect(help.stdout).toContain('--quiet');
      }
      expectCleanError(await jetvault(['ls', '--from', dir, '--log-format', 'xml']), 2, /--log-format.*'xml'.*json, pretty/);
    });
  });
});
