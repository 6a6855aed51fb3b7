package bench

// SeqTrack is what one connection saw of one room: the seqs above Base (the room's
// lastSeq when the connection joined), as a bitset. Not safe for concurrent use.
type SeqTrack struct {
	Base    int64
	bits    []uint64
	Unique  int64 // distinct seqs above Base
	Dup     int64 // deliveries of a seq already seen
	Below   int64 // deliveries at or below Base (history the bench did not ask for)
	MaxSeen int64
}

// maxTrackedSeqs bounds one bitset (1 M seqs = 128 KiB): a run never sends more to one room.
const maxTrackedSeqs = 1 << 20

// Observe records one delivery of seq and reports whether it was new.
func (t *SeqTrack) Observe(seq int64) bool {
	if seq <= t.Base {
		t.Below++
		return false
	}
	off := seq - t.Base - 1
	if off >= maxTrackedSeqs {
		t.Below++ // out of the tracked window: counted, not verified
		return false
	}
	w := int(off / 64)
	if w >= len(t.bits) {
		n := max(w+1, 2*len(t.bits))
		nb := make([]uint64, n)
		copy(nb, t.bits)
		t.bits = nb
	}
	m := uint64(1) << (off % 64)
	if t.bits[w]&m != 0 {
		t.Dup++
		return false
	}
	t.bits[w] |= m
	t.Unique++
	t.MaxSeen = max(t.MaxSeen, seq)
	return true
}

// Has reports whether seq was seen.
func (t *SeqTrack) Has(seq int64) bool {
	off := seq - t.Base - 1
	if off < 0 || off >= int64(len(t.bits))*64 {
		return false
	}
	return t.bits[off/64]&(1<<(off%64)) != 0
}

// RoomStats aggregates, for one room, what the connections of one or more workers saw
// and what the senders got acknowledged. Merge adds two of them.
type RoomStats struct {
	Members  int64 `json:"members"`  // joined connections tracked
	SumBase  int64 `json:"sumBase"`  // Σ of the members' Base
	MinBase  int64 `json:"minBase"`  // smallest Base (-1: none yet)
	Unique   int64 `json:"unique"`   // Σ distinct seqs seen above Base
	Dup      int64 `json:"dup"`      // Σ duplicate deliveries
	Below    int64 `json:"below"`    // Σ deliveries at or below Base
	MaxSeen  int64 `json:"maxSeen"`  // highest seq delivered to anyone
	Acked    int64 `json:"acked"`    // sends acknowledged (stored)
	AckedMax int64 `json:"ackedMax"` // highest seq acknowledged
}

// NewRoomStats returns an empty RoomStats.
func NewRoomStats() *RoomStats { return &RoomStats{MinBase: -1} }

// AddTrack adds one member's SeqTrack.
func (r *RoomStats) AddTrack(t *SeqTrack) {
	r.Members++
	r.SumBase += t.Base
	if r.MinBase < 0 || t.Base < r.MinBase {
		r.MinBase = t.Base
	}
	r.Unique += t.Unique
	r.Dup += t.Dup
	r.Below += t.Below
	r.MaxSeen = max(r.MaxSeen, t.MaxSeen)
}

// Merge adds o.
func (r *RoomStats) Merge(o *RoomStats) {
	r.Members += o.Members
	r.SumBase += o.SumBase
	if o.MinBase >= 0 && (r.MinBase < 0 || o.MinBase < r.MinBase) {
		r.MinBase = o.MinBase
	}
	r.Unique += o.Unique
	r.Dup += o.Dup
	r.Below += o.Below
	r.MaxSeen = max(r.MaxSeen, o.MaxSeen)
	r.Acked += o.Acked
	r.AckedMax = max(r.AckedMax, o.AckedMax)
}

// Totals is the verdict over all rooms.
type Totals struct {
	Rooms int `json:"rooms"`
	// Stored: messages stored during the run, from seqs (no gaps): Σ rooms (final − base),
	// final = the highest seq anyone saw acknowledged or delivered.
	Stored int64 `json:"stored"`
	Acked  int64 `json:"acked"`
	// Expected: deliveries owed, Σ members (final − member's base).
	Expected   int64 `json:"expectedDeliveries"`
	Delivered  int64 `json:"delivered"` // distinct (connection, seq) deliveries
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	Unexpected int64 `json:"unexpected"` // deliveries at or below a member's base
}

// Tally computes the totals. A room is verified only if some member joined it.
func Tally(rooms map[string]*RoomStats) Totals {
	var t Totals
	for _, r := range rooms {
		t.Rooms++
		t.Acked += r.Acked
		if r.Members == 0 {
			continue
		}
		final := max(r.MaxSeen, r.AckedMax, r.MinBase)
		t.Stored += final - r.MinBase
		exp := r.Members*final - r.SumBase
		t.Expected += exp
		t.Delivered += r.Unique
		t.Lost += exp - r.Unique
		t.Duplicated += r.Dup
		t.Unexpected += r.Below
	}
	return t
}
