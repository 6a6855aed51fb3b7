//go:build !race

package notification_test

const raceEnabled = false
