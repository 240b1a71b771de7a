import { describe, expect, it } from 'vitest';
import { creatableStreamConfig, versionAtLeast } from '../restore/target-stream.js';

const archived = {
  name: 'ORDERS',
  subjects: ['orders.>'],
  retention: 'limits',
  max_age: 3_600_000_000_000,
  max_msgs: -1,
  storage: 'file',
  num_replicas: 3,
  duplicate_window: 120_000_000_000,
  deny_delete: true,
  deny_purge: true,
  allow_rollup_hdrs: true,
  sealed: true,
  mirror: { name: 'UPSTREAM' },
  sources: [{ name: 'A' }],
  placement: { cluster: 'east', tags: ['ssd'] },
  subject_transform: { src: 'orders.>', dest: 'o.>' },
  republish: { src: '>', dest: 'copy.>' },
  first_seq: 1000,
  metadata: { owner: 'team-a', '_nats.req.level': '0' },
  compression: 's2',
  allow_msg_ttl: true,
};

describe('creatableStreamConfig', () => {
  it('keeps the settings that shape retention and drops what ties the source to its server', () => {
    const { config, dropped } = creatableStreamConfig(archived, 'RESTORED', '2.9.10');
    expect(config).toEqual({
      name: 'RESTORED',
      subjects: ['orders.>'],
      retention: 'limits',
      max_age: 3_600_000_000_000,
      max_msgs: -1,
      storage: 'file',
      num_replicas: 3,
      duplicate_window: 120_000_000_000,
      deny_delete: true,
      deny_purge: true,
      allow_rollup_hdrs: true,
    });
    expect(dropped.sort()).toEqual(['allow_msg_ttl', 'compression', 'first_seq', 'metadata', 'mirror', 'placement', 'republish', 'sealed', 'sources', 'subject_transform']);
  });

  it('copies newer settings only to servers that know them, without server-owned metadata', () => {
    const { config } = creatableStreamConfig(archived, 'RESTORED', '2.11.1');
    expect(config).toMatchObject({ compression: 's2', allow_msg_ttl: true, metadata: { owner: 'team-a' } });
    expect(config.metadata).not.toHaveProperty('_nats.req.level');
  });
});

describe('versionAtLeast', () => {
  it('compares numerically, not as strings', () => {
    expect(versionAtLeast('2.10.0', '2.9.0')).toBe(true);
    expect(versionAtLeast('2.9.10', '2.10.0')).toBe(false);
    expect(versionAtLeast('v2.11.0-beta.1', '2.11.0')).toBe(true);
    expect(versionAtLeast(undefined, '2.10.0')).toBe(false);
  });
});
