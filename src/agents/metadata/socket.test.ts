// One socket path for the metadata agent and every proxy that forwards to it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDhcpAgentConfig, loadMetadataAgentConfig } from '../../config/load.js';
import { metadataProxySocket } from './socket.js';

test('the proxies forward to the metadata agent\'s socket: the same path from every agent\'s configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dvrnet-sock-'));
  try {
    writeFileSync(join(dir, 'neutron.conf'), '[DEFAULT]\nstate_path = /var/lib/neutron\ninterface_driver = openvswitch\n');
    const md = loadMetadataAgentConfig([join(dir, 'neutron.conf')], { cwd: dir, warn: () => {} });
    const dhcp = loadDhcpAgentConfig([join(dir, 'neutron.conf')], { cwd: dir, warn: () => {} });
    assert.equal(md.metadata_proxy_socket, '/var/lib/neutron/metadata_proxy');
    assert.equal(metadataProxySocket(dhcp, dir), md.metadata_proxy_socket);
    writeFileSync(join(dir, 'neutron.conf'), '[DEFAULT]\nstate_path = /var/lib/neutron\ninterface_driver = openvswitch\nmetadata_proxy_socket = $state_path/md.sock\n');
    const md2 = loadMetadataAgentConfig([join(dir, 'neutron.conf')], { cwd: dir, warn: () => {} });
    assert.equal(metadataProxySocket(loadDhcpAgentConfig([join(dir, 'neutron.conf')], { cwd: dir, warn: () => {} }), dir), md2.metadata_proxy_socket);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
