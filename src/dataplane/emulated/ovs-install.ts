// Installs the OVS flow-table model (ovs/) as the vswitch's bridge implementation.
// (Until ovs/ exports its bridge this module installs nothing and creating an OVS bridge
// fails with a clear error.)
export {};
