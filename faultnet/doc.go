// Package faultnet injects network faults between named in-process nodes that
// talk over real loopback TCP, in the spirit of etcd's test bridge.
//
// Every node dials through a function from Network.Dialer (or GRPCDialer for
// gRPC clients such as etcd's), and every listener's address is given a node
// name with Register. Faults are then set on links between names:
//
//   - Cut(a, b) black-holes the link like a partition: open connections stall
//     (nothing is lost or reordered; writes fill a socket-sized buffer, then
//     block; data held during the cut is delivered after Heal) and new dials
//     hang until their context ends or DialTimeout passes.
//   - Isolate(a) cuts a from everybody, including nodes registered later and
//     addresses that have no name; Rejoin(a) undoes it.
//   - Pause(a) stalls every link of a as if its process were SIGSTOPped;
//     dials to it still complete, as the kernel accepts them.
//   - Delay(a, b, d) adds one-way latency d to each direction, without
//     reordering and without serialising throughput.
//   - Reset(a, b) drops the open connections with an RST.
//   - HealAll() removes every cut, isolation, pause and delay.
//
// Only the dialing side of a connection is wrapped; the listening side is a
// plain socket that sees exactly what a real network would deliver. Deadlines
// keep working on wrapped connections, and Close releases blocked calls.
// Traffic that does not dial through the Network (for example a control plane
// called in-process) is not affected.
//
// Example:
//
//	nw := faultnet.New(logger)
//	defer nw.Close()
//	b1 := startBroker(cfgWithDial(nw.Dialer("broker-1")))
//	nw.Register("broker-1", b1.Addr())
//	b2 := startBroker(cfgWithDial(nw.Dialer("broker-2")))
//	nw.Register("broker-2", b2.Addr())
//
//	nw.Cut("broker-1", "broker-2") // replication between them stalls
//	nw.Heal("broker-1", "broker-2")
//	nw.Delay("client", "broker-1", 20*time.Millisecond)
//	fmt.Println(nw.Bytes("broker-2", "broker-1")) // bytes sent so far
package faultnet
