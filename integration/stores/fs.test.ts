import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileStore } from '../../src/stores/fs.js';
import { storeConformance } from './conformance.js';

storeConformance('FileStore', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'jv-conformance-fs-'));
  // A root that does not exist yet: the store must create it on the first put.
  return {
    store: new FileStore(path.join(dir, 'archive')),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
