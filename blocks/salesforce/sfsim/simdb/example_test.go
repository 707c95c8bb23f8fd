package simdb_test

import (
	"encoding/json"
	"fmt"

	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim/simdb"
)

func ExampleDB_Query() {
	db, err := simdb.Default()
	if err != nil {
		panic(err)
	}
	res, err := db.Query("SELECT Name, Account.Name FROM Contact WHERE Phone = '+1 415 555 0100'",
		simdb.QueryOptions{APIVersion: "66.0"})
	if err != nil {
		panic(err)
	}
	out, _ := json.Marshal(res.Records[0])
	fmt.Println(res.TotalSize)
	fmt.Println(string(out))
	// Output:
	// 1
	// {"attributes":{"type":"Contact","url":"/services/data/v66.0/sobjects/Contact/003Hs000000001dIAA"},"Name":"Ada Byron","Account":{"attributes":{"type":"Account","url":"/services/data/v66.0/sobjects/Account/001Hs0000000001IAA"},"Name":"Acme Corporation"}}
}

func ExampleDB_Create() {
	db := simdb.New()
	_, err := db.Create("Contact", map[string]any{"FirstName": "Ada"})
	fmt.Println(err)
	// Output:
	// REQUIRED_FIELD_MISSING: Required fields are missing: [LastName]
}
