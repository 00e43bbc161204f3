// Shared types for the agent and the gateway: OTLP and remote-write messages generated from protos/,
// configuration loading, compression and the hash ring.
[assembly: System.CLSCompliant(false)]
