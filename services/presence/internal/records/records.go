// Package records answers chat's records requests for the presence service's
// data about one user (pkg/records; docs/safeguarding.md): the one presence
// document (_id = userId: lastSeenAt, chosen status and when it was set),
// exported or erased with point operations by _id. Presence keeps no other
// history; the live online state is soft state that ends with the connections.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	pkgrecords "github.com/talim/realtime/pkg/records"
)

// collection is internal/store Collection.
const collection = "presence"

// Owner implements pkgrecords.Owner on the presence collection.
type Owner struct{ coll *mongo.Collection }

var _ pkgrecords.Owner = (*Owner)(nil)

// New returns the owner on db.
func New(db *mongo.Database) *Owner { return &Owner{coll: db.Collection(collection)} }

// Export returns the user's presence document (one page).
func (o *Owner) Export(ctx context.Context, userID, _ string, _ int) ([]pkgrecords.Line, string, error) {
	var d bson.M
	err := o.coll.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("export presence: %w", err)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, "", fmt.Errorf("export presence: encode: %w", err)
	}
	return []pkgrecords.Line{{Kind: "presence", Data: b}}, "", nil
}

// Erase deletes the user's presence document.
func (o *Owner) Erase(ctx context.Context, userID string) (map[string]int64, error) {
	res, err := o.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: userID}})
	if err != nil {
		return nil, fmt.Errorf("erase presence: %w", err)
	}
	return map[string]int64{"presence": res.DeletedCount}, nil
}
