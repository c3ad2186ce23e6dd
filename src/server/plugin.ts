// The core plugin: the services composed over one database and configuration. This is the
// single place that wires them together (no mixins: each service gets what it uses).

import type { ServerConfig } from '../config/server.js';
import type { Db } from '../db/connect.js';
import { TypeManager } from '../ml2/type_drivers.js';
import { Events } from './events.js';
import { NetworkService } from './networks.js';
import { PortService } from './ports.js';
import { SecurityGroupService } from './security_groups.js';
import { SubnetService } from './subnets.js';

export class CorePlugin {
  readonly events = new Events();
  readonly types: TypeManager;
  readonly networks: NetworkService;
  readonly subnets: SubnetService;
  readonly securityGroups: SecurityGroupService;
  readonly ports: PortService;

  constructor(
    readonly db: Db,
    readonly conf: ServerConfig,
  ) {
    this.types = new TypeManager(db, conf);
    this.networks = new NetworkService(db, conf, this.types);
    this.subnets = new SubnetService(db, conf, this.networks);
    this.securityGroups = new SecurityGroupService(db);
    this.ports = new PortService(db, this.events, conf, this.networks, this.subnets, this.securityGroups);
  }
}
