// Package records answers chat's records requests for the notification
// service's data about one user (pkg/records; docs/safeguarding.md): export
// pages of their notifications, and erase them. It reads the collections of
// internal/store directly: notifications by {userId} (the inbox index) paged by
// _id, and sends by {recipients} (a scan on FerretDB; erasure is rare).
package records

import (
	"context"
	"encoding/json"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	pkgrecords "github.com/talim/realtime/pkg/records"
)

// Collection names (internal/store NotificationsCollection, SendsCollection).
const (
	notificationsCollection = "notifications"
	sendsCollection         = "sends"
)

// Owner implements pkgrecords.Owner on the notification collections.
type Owner struct {
	notes, sends *mongo.Collection
}

var _ pkgrecords.Owner = (*Owner)(nil)

// New returns the owner on db.
func New(db *mongo.Database) *Owner {
	return &Owner{notes: db.Collection(notificationsCollection), sends: db.Collection(sendsCollection)}
}

// Export returns a page of userID's notifications after the _id after.
func (o *Owner) Export(ctx context.Context, userID, after string, limit int) ([]pkgrecords.Line, string, error) {
	filter := bson.D{{Key: "userId", Value: userID}}
	if after != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}})
	}
	cur, err := o.notes.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, "", fmt.Errorf("export notifications: %w", err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		return nil, "", fmt.Errorf("export notifications: %w", err)
	}
	lines := make([]pkgrecords.Line, 0, len(docs))
	next := ""
	for _, d := range docs {
		b, err := json.Marshal(d)
		if err != nil {
			return nil, "", fmt.Errorf("export notifications: encode: %w", err)
		}
		lines = append(lines, pkgrecords.Line{Kind: "notification", Data: b})
		next, _ = d["_id"].(string)
	}
	if len(docs) < limit {
		next = ""
	}
	return lines, next, nil
}

// Erase deletes userID's notifications and takes them off the recipient lists
// of the sends that reached them.
func (o *Owner) Erase(ctx context.Context, userID string) (map[string]int64, error) {
	res, err := o.notes.DeleteMany(ctx, bson.D{{Key: "userId", Value: userID}})
	if err != nil {
		return nil, fmt.Errorf("erase notifications: %w", err)
	}
	removed := map[string]int64{"notifications": res.DeletedCount}
	up, err := o.sends.UpdateMany(ctx, bson.D{{Key: "recipients", Value: userID}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "recipients", Value: userID}}}})
	if err != nil {
		return removed, fmt.Errorf("erase send recipients: %w", err)
	}
	removed["sendRecipients"] = up.ModifiedCount
	return removed, nil
}
