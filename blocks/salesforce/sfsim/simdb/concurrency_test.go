package simdb

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentUse runs writers and readers at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	db := newSeededDB(t)
	const workers, perWorker = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker*4)
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				ext := fmt.Sprintf("CONC-%d-%d", w, i)
				if _, err := db.Create("Contact", map[string]any{"LastName": "Worker", "External_Id__c": ext, "Phone": "+1 999 555 0000"}); err != nil {
					errs <- err
				}
				if _, _, err := db.Upsert("Contact", "External_Id__c", ext, map[string]any{"FirstName": "Busy"}); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				if _, err := db.Query("SELECT Id, Name, Account.Name FROM Contact WHERE LastName = 'Worker' ORDER BY Name", QueryOptions{}); err != nil {
					errs <- err
				}
				if _, err := db.Search("FIND {9995550000} IN PHONE FIELDS RETURNING Contact(Name)", ""); err != nil {
					errs <- err
				}
				_ = db.Count("Contact")
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	res := mustQuery(t, db, "SELECT COUNT() FROM Contact WHERE Name = 'Busy Worker'")
	if res.TotalSize != workers*perWorker {
		t.Fatalf("got %d updated contacts, want %d", res.TotalSize, workers*perWorker)
	}
	if db.Count("Contact") != 300+workers*perWorker {
		t.Fatalf("count %d", db.Count("Contact"))
	}
}
