// The API extensions this server implements, as /v2.0/extensions lists them. Clients
// (openstacksdk, neutronclient) decide what to send from this list, so it names only what
// is really there.

const ext = (alias: string, name: string, description: string) => ({
  alias,
  name,
  description,
  updated: '2026-11-26T00:00:00-00:00',
  links: [] as unknown[],
});

export const EXTENSIONS = [
  ext('provider', 'Provider Network', 'Expose mapping of virtual networks to physical networks'),
  ext('external-net', 'Neutron external network', 'Adds external network attribute to network resource.'),
  ext('network-mtu', 'Network MTU', 'Provides MTU attribute for a network resource.'),
  ext('net-mtu-writable', 'Network MTU (writable)', 'Provides a writable MTU attribute for a network resource.'),
  ext('binding', 'Port Binding', 'Expose port bindings of a virtual port to external application'),
  ext('security-group', 'security-group', 'The security groups extension.'),
  ext('stateful-security-group', 'Stateful security group', 'Indicates if the security group is stateful or not'),
  ext('port-security', 'Port Security', 'Provides port security'),
  ext('allowed-address-pairs', 'Allowed Address Pairs', 'Provides allowed address pairs'),
  ext('standard-attr-description', 'standard-attr-description', 'Extension to add descriptions to standard attributes'),
  ext('standard-attr-revisions', 'Resource revision numbers', 'This extension will display the revision number of neutron resources.'),
  ext('standard-attr-timestamp', 'Resource timestamps', 'Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.'),
  ext('project-id', 'project_id field enabled', 'Extension that indicates that project_id field is enabled.'),
  ext('pagination', 'Pagination support', 'Extension that indicates that pagination is enabled.'),
  ext('sorting', 'Sorting support', 'Extension that indicates that sorting is enabled.'),
  ext('filter-validation', 'Filter parameters validation', 'Provides validation on filter parameters.'),
  ext('ip-substring-filtering', 'IP address substring filtering', 'Provides IP address substring filtering when listing ports'),
  ext('router', 'Neutron L3 Router', 'Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.'),
  ext('dvr', 'Distributed Virtual Router', 'Enables configuration of Distributed Virtual Routers.'),
  ext('extraroute', 'Neutron Extra Route', 'Extra routes configuration for L3 router'),
  ext('ext-gw-mode', 'Neutron L3 Configurable external gateway mode', 'Extension of the router abstraction for specifying whether SNAT should occur on the external gateway'),
  ext('agent', 'agent', 'The agent management extension.'),
  ext('l3_agent_scheduler', 'L3 Agent Scheduler', 'Schedule routers among l3 agents'),
  ext('dhcp_agent_scheduler', 'DHCP Agent Scheduler', 'Schedule networks among dhcp agents'),
];
