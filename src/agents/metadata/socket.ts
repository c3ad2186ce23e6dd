// Where the metadata agent listens and every metadata proxy of the host forwards to: the
// same `metadata_proxy_socket` for the metadata, L3 and DHCP agents (Neutron registers the
// option for all three, default `$state_path/metadata_proxy`).

import { resolve } from 'node:path';
import type { AgentCommon } from '../../config/agents.js';

export function metadataProxySocket(c: Pick<AgentCommon, 'state_path' | 'raw'>, cwd = process.cwd()): string {
  const set = c.raw.DEFAULT?.metadata_proxy_socket?.trim();
  return set ? resolve(cwd, set.replace(/\$(\{state_path\}|state_path)/g, c.state_path)) : resolve(c.state_path, 'metadata_proxy');
}
