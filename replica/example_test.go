package replica_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// An app embeds a replica: open it, commit edits, read records back.
func Example() {
	dir, err := os.MkdirTemp("", "prophet-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	r, err := replica.Init(dir, uuid.Nil, &replica.Options{Creator: "alice@example.com"})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()

	// Commit returns once the changeset is durable.
	cs, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create,
		Set: map[string]string{"title": "printer on fire", "status": "new"}})
	if err != nil {
		log.Fatal(err)
	}
	bug := cs.Changes[0].Record

	// Old values are filled in from the record's state at commit time.
	cs, err = r.Commit(ctx, replica.Edit{Type: "bug", Record: bug, Op: replica.Update,
		Set: map[string]string{"status": "open"}})
	if err != nil {
		log.Fatal(err)
	}
	p := cs.Changes[0].Props[0]
	fmt.Printf("changeset %d: %s %q -> %q\n", cs.Seq, p.Name, p.Old, p.New)

	err = r.List("bug", map[string]string{"status": "open"}, func(rec *replica.Record) error {
		fmt.Printf("bug %d: %s (%s)\n", rec.LUID, rec.Get("title"), rec.Get("status"))
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// changeset 2: status "new" -> "open"
	// bug 1: printer on fire (open)
}
