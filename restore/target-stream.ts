/**
 * The stream a restore writes into: found, or created from the archived stream configuration. Only the
 * settings that shape how messages are kept are copied; whatever ties the source to its own server or
 * would change the restored messages (mirror/sources, placement, subject transforms, republish, sealed,
 * first_seq) is left out, so the stream can be created on any server.
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { JetvaultError, describeError } from '../src/errors.js';
import type { Logger } from '../src/logger.js';
import type { ArchivedStream } from './archive-reader.js';

/** Copied as they are; every server with JetStream knows them. */
const PORTABLE_FIELDS = [
  'description',
  'subjects',
  'retention',
  'max_consumers',
  'max_msgs',
  'max_bytes',
  'max_age',
  'max_msgs_per_subject',
  'max_msg_size',
  'discard',
  'discard_new_per_subject',
  'storage',
  'num_replicas',
  'duplicate_window',
  'no_ack',
  'allow_rollup_hdrs',
  'deny_delete',
  'deny_purge',
  'allow_direct',
] as const;

/** Copied only when the target server is at least this version (older clients/servers refuse them). */
const VERSIONED_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['metadata', '2.10.0'],
  ['compression', '2.10.0'],
  ['consumer_limits', '2.10.0'],
  // Messages carrying Nats-TTL are refused by a stream without it.
  ['allow_msg_ttl', '2.11.0'],
];

export function versionAtLeast(version: string | undefined, min: string): boolean {
  if (!version) return false;
  const parse = (v: string) => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((p) => Number.parseInt(p, 10) || 0);
  const a = parse(version);
  const b = parse(min);
  for (let i = 0; i < 3; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export interface CreatableConfig {
  config: Partial<StreamConfig> & { name: string };
  /** Archived settings left out, for the log. */
  dropped: string[];
}

/** The archived stream config reduced to what can be created on a server of `serverVersion`. */
export function creatableStreamConfig(archived: Record<string, unknown>, name: string, serverVersion: string | undefined): CreatableConfig {
  const config: Record<string, unknown> = { name };
  const kept = new Set<string>(['name']);
  for (const field of PORTABLE_FIELDS) {
    if (archived[field] !== undefined && archived[field] !== null) {
      config[field] = archived[field];
      kept.add(field);
    }
  }
  for (const [field, min] of VERSIONED_FIELDS) {
    if (archived[field] !== undefined && archived[field] !== null && versionAtLeast(serverVersion, min)) {
      config[field] = archived[field];
      kept.add(field);
    }
  }
  if (config.metadata && typeof config.metadata === 'object') {
    // `_nats.*` keys are written by the server itself (API level, version) and refused from clients.
    const metadata = Object.fromEntries(Object.entries(config.metadata as Record<string, string>).filter(([k]) => !k.startsWith('_nats.')));
    if (Object.keys(metadata).length > 0) config.metadata = metadata;
    else delete config.metadata;
  }
  const dropped = Object.keys(archived).filter((k) => !kept.has(k) && archived[k] !== undefined && archived[k] !== null && archived[k] !== false);
  return { config: config as CreatableConfig['config'], dropped };
}

export interface PrepareTargetOptions {
  jsm: JetStreamManager;
  name: string;
  archived: ArchivedStream;
  create: boolean;
  append: boolean;
  serverVersion: string | undefined;
  logger: Logger;
}

export interface PreparedTarget {
  stream: string;
  created: boolean;
  info: StreamInfo;
}

export function isStreamNotFound(error: unknown): boolean {
  return error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
}

export async function streamInfoOrUndefined(jsm: JetStreamManager, name: string): Promise<StreamInfo | undefined> {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (isStreamNotFound(error)) return undefined;
    throw new JetvaultError('JV_CONNECT_FAILED', `cannot read stream ${name}: ${describeError(error)}`, { cause: error });
  }
}

/** Finds or creates the target stream and checks it may receive the archive. */
export async function prepareTargetStream(options: PrepareTargetOptions): Promise<PreparedTarget> {
  const { jsm, name, archived, logger } = options;
  const existing = await streamInfoOrUndefined(jsm, name);
  if (existing) {
    if (existing.state.messages > 0 && !options.append) {
      throw new JetvaultError(
        'JV_TARGET_NOT_EMPTY',
        `target stream ${name} already holds ${existing.state.messages} messages; restore into an empty stream or allow appending`,
      );
    }
    return { stream: name, created: false, info: existing };
  }
  if (!options.create) {
    throw new JetvaultError('JV_TARGET_MISSING', `target stream ${name} does not exist (and creating it was not allowed)`);
  }
  const { config, dropped } = creatableStreamConfig(archived.newest.streamConfig, name, options.serverVersion);
  if (!Array.isArray(config.subjects) || config.subjects.length === 0) {
    // A mirror or a sourcing stream has no subjects of its own; restored messages would land nowhere.
    throw new JetvaultError(
      'JV_TARGET_MISSING',
      `target stream ${name} does not exist and the archived configuration of ${archived.stream} has no subjects to create it with; create it first`,
    );
  }
  if (dropped.length > 0) logger.info({ stream: name, dropped }, 'archived stream settings not copied to the new stream');
  if (config.retention === 'interest') {
    logger.warn({ stream: name }, 'the archived stream uses interest retention: messages restored while it has no consumers are not kept');
  }
  let info: StreamInfo;
  try {
    info = await jsm.streams.add(config);
  } catch (error) {
    // Replicas the target cannot provide (a single server) should not stop a restore: retry with one.
    if ((config.num_replicas ?? 1) > 1 && /replica|cluster/i.test(describeError(error))) {
      logger.warn({ stream: name, numReplicas: config.num_replicas }, 'target cannot hold the archived replica count; creating with 1 replica');
      try {
        info = await jsm.streams.add({ ...config, num_replicas: 1 });
      } catch (second) {
        throw new JetvaultError('JV_TARGET_MISSING', `target stream ${name} does not exist and cannot be created: ${describeError(second)}`, { cause: second });
      }
    } else {
      throw new JetvaultError('JV_TARGET_MISSING', `target stream ${name} does not exist and cannot be created: ${describeError(error)}`, { cause: error });
    }
  }
  logger.info({ stream: name, subjects: info.config.subjects }, 'created target stream from the archived configuration');
  return { stream: name, created: true, info };
}
