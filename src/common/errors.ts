// Neutron's fault classes. The class name travels on the wire as NeutronError.type and the
// status comes from the family (neutron_lib/api/faults.py), so each error is declared once
// here with its message and the API layer maps it without a table of its own.

export type Detail = string;

export class NeutronError extends Error {
  constructor(
    /** Neutron's exception class name, e.g. 'NetworkNotFound'. */
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (type: string, message: string) => new NeutronError(type, 404, message);
const conflict = (type: string, message: string) => new NeutronError(type, 409, message);
const badRequest = (type: string, message: string) => new NeutronError(type, 400, message);

export const Faults = {
  // 400
  badRequest: (message: string) => badRequest('HTTPBadRequest', message),
  invalidInput: (error: string) => badRequest('InvalidInput', `Invalid input for operation: ${error}.`),
  invalidAttribute: (attr: string, reason: string) =>
    badRequest('HTTPBadRequest', `Invalid input for ${attr}. Reason: ${reason}.`),
  missingAttribute: (attr: string) =>
    badRequest('HTTPBadRequest', `Failed to parse request. Required attribute '${attr}' not specified`),
  readOnlyAttribute: (attr: string) => badRequest('HTTPBadRequest', `Cannot update read-only attribute ${attr}`),
  unrecognizedAttributes: (attrs: string[]) =>
    badRequest('HTTPBadRequest', `Unrecognized attribute(s) '${attrs.join(', ')}'`),
  bodyMissing: (resource: string) => badRequest('HTTPBadRequest', `Unable to find '${resource}' in request body`),
  malformedBody: () => badRequest('HTTPBadRequest', 'Malformed request body'),
  invalidCidr: (cidr: string) => badRequest('InvalidInput', `Invalid input for operation: '${cidr}' is not a valid IP subnet.`),
  // 401/403
  notAuthenticated: () => new NeutronError('HTTPUnauthorized', 401, 'Authentication required'),
  policy: (rule: string) => new NeutronError('PolicyNotAuthorized', 403, `(rule:${rule}) is disallowed by policy`),
  adminRequired: (reason: string) => new NeutronError('AdminRequired', 403, `User does not have admin privileges: ${reason}.`),
  // 404
  networkNotFound: (id: string) => notFound('NetworkNotFound', `Network ${id} could not be found.`),
  subnetNotFound: (id: string) => notFound('SubnetNotFound', `Subnet ${id} could not be found.`),
  portNotFound: (id: string) => notFound('PortNotFound', `Port ${id} could not be found.`),
  securityGroupNotFound: (id: string) => notFound('SecurityGroupNotFound', `Security group ${id} does not exist`),
  securityGroupRuleNotFound: (id: string) =>
    notFound('SecurityGroupRuleNotFound', `Security group rule ${id} does not exist`),
  resourceNotFound: (collection: string) => notFound('HTTPNotFound', `The resource could not be found.`),
  // 409
  networkInUse: (id: string) =>
    conflict(
      'NetworkInUse',
      `Unable to complete operation on network ${id}. There are one or more ports still in use on the network.`,
    ),
  subnetInUse: (id: string, reason = 'One or more ports have an IP allocation from this subnet.') =>
    conflict('SubnetInUse', `Unable to complete operation on subnet ${id}: ${reason}`),
  ipAddressInUse: (netId: string, ip: string) =>
    conflict('IpAddressInUse', `Unable to complete operation for network ${netId}. The IP address ${ip} is in use.`),
  ipAddressGenerationFailure: (netId: string) =>
    conflict('IpAddressGenerationFailure', `No more IP addresses available on network ${netId}.`),
  macAddressInUse: (netId: string, mac: string) =>
    conflict('MacAddressInUse', `Unable to complete operation for network ${netId}. The mac address ${mac} is in use.`),
  noNetworkAvailable: () =>
    new NeutronError('NoNetworkAvailable', 503, 'Unable to create the network. No tenant network is available for allocation.'),
  segmentInUse: (what: string) => conflict('SegmentationIdInUse', what),
  flatNetworkInUse: (physnet: string) =>
    conflict('FlatNetworkInUse', `Unable to create the flat network. Physical network ${physnet} is in use.`),
  vlanIdInUse: (vlan: number, physnet: string) =>
    conflict(
      'VlanIdInUse',
      `Unable to create the network. The VLAN ${vlan} on physical network ${physnet} is in use.`,
    ),
  tunnelIdInUse: (id: number) =>
    conflict('TunnelIdInUse', `Unable to create the network. The tunnel ID ${id} is in use.`),
  securityGroupInUse: (id: string) => conflict('SecurityGroupInUse', `Security Group ${id} in use.`),
  securityGroupRuleExists: (id: string) =>
    conflict('SecurityGroupRuleExists', `Security group rule already exists. Rule id is ${id}.`),
  defaultSecurityGroupDelete: () =>
    conflict('SecurityGroupCannotRemoveDefault', 'Insufficient rights for removing default security group.'),
  portSecurityAndIPRequiredForSecurityGroups: () =>
    badRequest(
      'PortSecurityAndIPRequiredForSecurityGroups',
      'Port security must be enabled and port must have an IP address in order to use security groups.',
    ),
  portSecurityPortHasSecurityGroup: () =>
    conflict('PortSecurityPortHasSecurityGroup', 'Port has security group associated. Cannot disable port security or ip address until security group is removed'),
  addressPairAndPortSecurityRequired: () =>
    conflict('AddressPairAndPortSecurityRequired', 'Port Security must be enabled in order to have allowed address pairs on a port.'),
  gatewayConflictWithAllocationPools: (ip: string, pool: string) =>
    conflict('GatewayConflictWithAllocationPools', `Gateway ip ${ip} conflicts with allocation pool ${pool}.`),
  macGenerationFailure: (netId: string) =>
    new NeutronError('MacAddressGenerationFailure', 503, `Unable to generate unique mac on network ${netId}.`),
  overQuota: (resource: string) => conflict('OverQuota', `Quota exceeded for resources: ['${resource}'].`),
} as const;
