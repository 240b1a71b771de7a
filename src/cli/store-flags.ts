/**
 * The store flags shared by capture, restore and verify: the S3 settings that are easier to give as flags
 * than in the URI. Credentials are never flags (they would show in process lists): they come from the
 * environment, as the README says.
 */
import { Command } from 'commander';
import type { Store } from '../stores/store.js';
import { createStore, type CreateStoreOptions } from '../stores/uri.js';

export interface StoreFlags {
  s3Endpoint?: string;
  s3Region?: string;
  s3ForcePathStyle?: boolean;
}

export const STORE_URI_HELP = 'file:///abs/dir, a directory path, s3://bucket/prefix or azure://container/prefix';

export function addStoreFlags(command: Command): Command {
  return command
    .option('--s3-endpoint <url>', 'S3 endpoint for S3-compatible services (MinIO, Ceph, R2); same as ?endpoint=')
    .option('--s3-region <region>', 'S3 region (default: AWS_REGION or us-east-1); same as ?region=')
    .option('--s3-force-path-style', 'S3 path-style addressing (needed by most S3-compatible services)');
}

/** Resolves the store URI with the flags applied; unknown schemes and bad parameters are usage errors. */
export function storeFromFlags(uri: string, flags: StoreFlags): Store {
  const s3: NonNullable<CreateStoreOptions['s3']> = {};
  if (flags.s3Endpoint !== undefined) s3.endpoint = flags.s3Endpoint;
  if (flags.s3Region !== undefined) s3.region = flags.s3Region;
  if (flags.s3ForcePathStyle) s3.forcePathStyle = true;
  return createStore(uri, { s3 });
}
