// Bad input reaches no command: on top of src/host's validation (device and namespace
// names, addresses, flows), everything the linux driver puts into an argument or a file
// is checked here before a command is built. Arguments never pass through a shell, but a
// name starting with "-" would still read as an option, and a newline would split a line
// of `ip -batch`, `ipset restore` or a dnsmasq file.
import { isCidr, isIp, isMac } from '../../host/ip.js';
import type { HostState } from '../../host/state.js';

export class UnsafeInputError extends Error {
  constructor(readonly problems: string[]) {
    super(`Host state refused by the linux driver:\n- ${problems.join('\n- ')}`);
    this.name = 'UnsafeInputError';
  }
}

const TOKEN = /^[A-Za-z0-9_.][A-Za-z0-9_.:-]*$/;
const ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const SYSCTL = /^[a-z0-9_]+(\.[A-Za-z0-9_/@-]+)+$/;

export function commandProblems(s: HostState): string[] {
  const p: string[] = [];
  const token = (what: string, v: string | undefined) => {
    if (v !== undefined && !TOKEN.test(v)) p.push(`${what} "${v}" is not a plain name (letters, digits, "_", ".", ":", "-", not starting with "-")`);
  };
  for (const b of Object.values(s.ovs.bridges)) {
    token('Bridge', b.name);
    for (const port of Object.values(b.ports)) token(`Port on ${b.name}`, port.name);
    for (const f of b.flows) if (/[\r\n]/.test(f.match + f.actions)) p.push(`Flow on ${b.name} spans lines: "${f.match}"`);
  }
  for (const ns of Object.values(s.namespaces)) {
    if (ns.name) token('Namespace', ns.name);
    for (const l of Object.values(ns.links)) {
      token('Link', l.name);
      if (l.mac !== undefined && !isMac(l.mac)) p.push(`Link "${l.name}" MAC "${l.mac}" is not aa:bb:cc:dd:ee:ff`);
      for (const a of l.addresses) if (!isCidr(a)) p.push(`Link "${l.name}" address "${a}" is not a CIDR`);
      token(`Master of "${l.name}"`, l.master);
      if (l.kind === 'veth') token(`Peer of "${l.name}"`, l.peer);
    }
    for (const r of ns.routes) {
      if (r.dst !== 'default' && !isCidr(r.dst)) p.push(`Route dst "${r.dst}" in "${ns.name}" is not a CIDR`);
      if (r.via !== undefined && !isIp(r.via)) p.push(`Route via "${r.via}" is not an address`);
      if (r.src !== undefined && !isIp(r.src)) p.push(`Route src "${r.src}" is not an address`);
      token('Route dev', r.dev);
    }
    for (const r of ns.rules) {
      for (const x of [r.from, r.to]) if (x !== undefined && !isIp(x) && !isCidr(x)) p.push(`Rule selector "${x}" in "${ns.name}" is not an address or CIDR`);
      token('Rule iif', r.iif);
    }
    for (const n of ns.neighbours) {
      if (!isIp(n.ip)) p.push(`Neighbour "${n.ip}" is not an address`);
      if (!isMac(n.lladdr)) p.push(`Neighbour lladdr "${n.lladdr}" is not a MAC`);
    }
    for (const [k, v] of Object.entries(ns.sysctls)) {
      if (!SYSCTL.test(k)) p.push(`sysctl key "${k}" in "${ns.name}" is not a dotted sysctl name`);
      if (/[\r\n=]/.test(v) || v.trim() === '') p.push(`sysctl ${k} value "${v}" is empty or holds "=" or a newline`);
    }
    for (const set of Object.values(ns.ipsets)) {
      token('ipset', set.name);
      for (const m of set.members) if (!isIp(m) && !isCidr(m)) p.push(`ipset ${set.name} member "${m}" is not an address or CIDR`);
    }
  }
  for (const d of Object.values(s.dhcp)) {
    if (!ID.test(d.id)) p.push(`DHCP server id "${d.id}" is not a plain id (it names a directory)`);
    token('DHCP interface', d.interface);
  }
  for (const m of Object.values(s.metadata)) {
    if (!ID.test(m.id)) p.push(`Metadata proxy id "${m.id}" is not a plain id (it names a file)`);
    if (/[\s]/.test(m.upstream)) p.push(`Metadata proxy upstream "${m.upstream}" holds whitespace`);
    for (const x of [m.router_id, m.network_id]) if (x !== undefined && !ID.test(x)) p.push(`Metadata proxy id header "${x}" is not a plain id`);
  }
  return p;
}

export function assertSafeForCommands(s: HostState): void {
  const p = commandProblems(s);
  if (p.length) throw new UnsafeInputError(p);
}
