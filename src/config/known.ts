// Which options each program knows, so that a misspelt option is reported instead of silently
// ignored. The bulk comes from Neutron's own registry (known-options.ts, generated); this file
// adds what dvrnet reads beyond Neutron 21: options of the Kilo-era guide the scenario follows
// (removed from Neutron since) and dvrnet's own [identity] section.
import { DHCP_AGENT, L3_AGENT, METADATA_AGENT, ML2_CONF, NEUTRON_CONF, OVS_AGENT } from './known-options.js';

/**
 * Value type of an option, as oslo.config checks it: 'str', 'bool', 'int', 'int:MIN:MAX'
 * (either bound may be empty), 'port' (0-65535), 'float', 'list', 'choice:a|b|c'.
 */
export type OptionSpec = string;

export interface KnownFile {
  file: string;
  /** '*' = any option is accepted (keystoneauth plugin options depend on auth_type). */
  sections: Record<string, Record<string, OptionSpec> | '*'>;
  /** 'oldsection.oldname' -> 'section.name' (deprecated spellings still accepted). */
  aliases: Record<string, string>;
}

/** neutron.conf additions: legacy options the scenario sets, and the identity service. */
export const DVRNET_SERVER_EXTRAS: KnownFile = {
  file: 'neutron.conf',
  sections: {
    DEFAULT: {
      // Removed in later Neutron (overlap became always-on); dvrnet honours it.
      allow_overlapping_ips: 'bool',
      // Removed from oslo.log in Newton; accepted so old files keep loading.
      verbose: 'bool',
    },
    // dvrnet's built-in identity service (ServerConfig.identity).
    identity: {
      bind_host: 'str',
      bind_port: 'port',
      admin_password: 'str',
      demo_password: 'str',
      token_expiration: 'int:1:',
    },
  },
  aliases: {},
};

/** Agent-file additions: Kilo-era options of the scenario's agent configuration. */
export const DVRNET_AGENT_EXTRAS: KnownFile = {
  file: 'agent',
  sections: {
    DEFAULT: {
      use_namespaces: 'bool', // l3/dhcp agents, removed in Mitaka (namespaces always on)
      external_network_bridge: 'str', // l3 agent, removed in Stein (must be empty here)
      verbose: 'bool',
    },
    agent: { prevent_arp_spoofing: 'bool' }, // OVS agent, removed in Ocata (always on)
  },
  aliases: { 'DEFAULT.nova_metadata_ip': 'DEFAULT.nova_metadata_host' },
};

export type SectionSet = Map<string, Map<string, OptionSpec> | '*'>;

export interface KnownSet {
  sections: SectionSet;
  aliases: Map<string, { section: string; option: string }>;
}

export function mergeKnown(...files: KnownFile[]): KnownSet {
  const sections: SectionSet = new Map();
  const aliases = new Map<string, { section: string; option: string }>();
  for (const f of files) {
    for (const [name, opts] of Object.entries(f.sections)) {
      const have = sections.get(name);
      if (opts === '*' || have === '*') {
        sections.set(name, '*');
        continue;
      }
      const m = have ?? new Map<string, OptionSpec>();
      for (const [k, spec] of Object.entries(opts)) m.set(k, spec);
      sections.set(name, m);
    }
    for (const [from, to] of Object.entries(f.aliases)) {
      const dot = to.indexOf('.');
      aliases.set(from, { section: to.slice(0, dot), option: to.slice(dot + 1) });
    }
  }
  return { sections, aliases };
}

export const SERVER_KNOWN = mergeKnown(NEUTRON_CONF, ML2_CONF, DVRNET_SERVER_EXTRAS);
/** Agents are started with neutron.conf plus their own file, as in Neutron. */
export const OVS_AGENT_KNOWN = mergeKnown(NEUTRON_CONF, DVRNET_SERVER_EXTRAS, OVS_AGENT, DVRNET_AGENT_EXTRAS);
export const L3_AGENT_KNOWN = mergeKnown(NEUTRON_CONF, DVRNET_SERVER_EXTRAS, L3_AGENT, DVRNET_AGENT_EXTRAS);
export const DHCP_AGENT_KNOWN = mergeKnown(NEUTRON_CONF, DVRNET_SERVER_EXTRAS, DHCP_AGENT, DVRNET_AGENT_EXTRAS);
export const METADATA_AGENT_KNOWN = mergeKnown(NEUTRON_CONF, DVRNET_SERVER_EXTRAS, METADATA_AGENT, DVRNET_AGENT_EXTRAS);
