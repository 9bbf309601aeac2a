package gossip

import (
	"strconv"
	"strings"

	"github.com/brokerlab/brokerlab/broker"
)

// Slots is the number of hash slots of Redis Cluster.
const Slots = 16384

// crcTable is CRC-16/XMODEM (polynomial 0x1021, initial value 0, no
// reflection), the checksum Redis Cluster hashes keys with.
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 is Redis Cluster's key checksum (CRC-16/XMODEM);
// CRC16("123456789") is 0x31C3.
func CRC16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>8)^x]
	}
	return c
}

// Slot is the hash slot of key: CRC16 mod 16384, hashing only the part
// between the first '{' and the next '}' when that part is not empty
// (Redis hash tags).
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(CRC16([]byte(key)) % Slots)
}

// PartitionKey is the key a partition is placed by: "topic/partition".
func PartitionKey(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// LogEnds is what Config.Offsets returns for a broker whose replicas are
// status (broker.Status): each one's log end offset by its PartitionKey.
func LogEnds(status []broker.ReplicaStatus) map[string]int64 {
	out := make(map[string]int64, len(status))
	for _, rs := range status {
		out[PartitionKey(rs.Topic, rs.Partition)] = rs.LogEnd
	}
	return out
}
