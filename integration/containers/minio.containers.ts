/**
 * The store conformance suite against a real MinIO in a container (testcontainers), when a container
 * runtime is there: `npm run test:containers`. Without one the suite is skipped; runtime.ts prints why.
 * Not part of `vitest run` / CI: the default config includes only *.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { GenericContainer, Wait } from 'testcontainers';
import { describe, inject } from 'vitest';
import { S3Store } from '../../src/stores/s3.js';
import { storeConformance } from '../stores/conformance.js';
import { detectContainerRuntime, type ContainerRuntime } from './runtime.js';

/** Pinned: a MinIO release, not `latest`, so a run today and a run next year test the same server. */
export const MINIO_IMAGE = 'minio/minio:RELEASE.2025-09-07T16-13-09Z';
const MINIO_PORT = 9000;
const REGION = 'us-east-1';
// Throwaway credentials of a throwaway container; MinIO wants a password of at least 8 characters.
const CREDENTIALS = { accessKeyId: 'jetvault', secretAccessKey: `jv-${randomBytes(12).toString('hex')}` };

// Provided by runtime.ts as globalSetup; detected here only if the file runs under another config.
const runtime = (inject('containerRuntime') as ContainerRuntime | undefined) ?? (await detectContainerRuntime());

describe.skipIf(!runtime.available)('MinIO in a container', () => {
  storeConformance(`S3Store (${MINIO_IMAGE})`, async () => {
    const container = await new GenericContainer(MINIO_IMAGE)
      .withExposedPorts(MINIO_PORT)
      .withEnvironment({ MINIO_ROOT_USER: CREDENTIALS.accessKeyId, MINIO_ROOT_PASSWORD: CREDENTIALS.secretAccessKey })
      .withCommand(['server', '/data'])
      .withWaitStrategy(Wait.forHttp('/minio/health/live', MINIO_PORT).forStatusCode(200))
      .withStartupTimeout(120_000)
      .start();
    try {
      const endpoint = `http://${container.getHost()}:${container.getMappedPort(MINIO_PORT)}`;
      const bucket = `jv-conformance-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      const admin = new S3Client({ endpoint, region: REGION, forcePathStyle: true, credentials: CREDENTIALS });
      try {
        await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        admin.destroy();
      }
      // The SDK's default checksums (unlike s3rver, MinIO handles them), and a prefix, as in stores/s3.test.ts.
      const store = new S3Store({
        bucket,
        endpoint,
        region: REGION,
        forcePathStyle: true,
        credentials: CREDENTIALS,
        prefix: '/archive/conformance/',
      });
      return {
        store,
        cleanup: async () => {
          await container.stop();
        },
      };
    } catch (error) {
      await container.stop();
      throw error;
    }
  });
});
