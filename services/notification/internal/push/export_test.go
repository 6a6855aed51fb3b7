package push

// Test hooks.
var (
	HandleRegister = (*Pusher).handleRegister
	HandleRemove   = (*Pusher).handleRemove
	HandleChat     = (*Pusher).handleChat
)
