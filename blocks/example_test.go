package blocks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/sfblocks/sfblocks"
	"github.com/sfblocks/sfblocks/blocks"
	"github.com/sfblocks/sfblocks/blocks/salesforce"
	"github.com/sfblocks/sfblocks/blocks/salesforce/sfsim"
)

// Run a Search job against the Salesforce simulator. The caller's value is
// escaped for the string literal it stands in.
func ExampleExecutor_Handle() {
	sim, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	client, err := salesforce.New(salesforce.StaticToken(sim.IssueToken("").AccessToken, sim.InstanceURL()))
	if err != nil {
		fmt.Println(err)
		return
	}
	ex, err := blocks.NewExecutor(blocks.StaticAccounts{
		Default: "main",
		Clients: map[string]blocks.SalesforceAPI{"main": client},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	reply := ex.Handle(context.Background(), sfblocks.Search, []byte(`{
		"id": "call-1",
		"query": "SELECT Name, Email FROM Contact WHERE Phone = '$(ani)'",
		"variables": {"ani": "+1 415 555 0100"}
	}`))
	fmt.Println(reply.Status, *reply.Count, reply.First["Name"], reply.First["Email"])

	// A hostile value stays text: it finds nothing instead of everything.
	reply = ex.Handle(context.Background(), sfblocks.Search, []byte(`{
		"id": "call-2",
		"query": "SELECT Name FROM Contact WHERE Name = '$(name)'",
		"variables": {"name": "' OR Name != '"}
	}`))
	fmt.Println(reply.Status)

	// A value outside quotes must be a number, date or boolean.
	reply = ex.Handle(context.Background(), sfblocks.Search, []byte(`{
		"id": "call-3",
		"query": "SELECT Name FROM Contact WHERE Name = $(name)",
		"variables": {"name": "x OR Name != null"}
	}`))
	reply.DurationMS = 0
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(reply)
	// Output:
	// ok 1 Ada Byron ada@example.com
	// no_data
	// {
	//   "id": "call-3",
	//   "status": "failed",
	//   "error": {
	//     "code": "INVALID_REQUEST",
	//     "message": "variable \"name\" stands outside quotes in the query, so its value must be a number, a date (YYYY-MM-DD), a datetime (YYYY-MM-DDThh:mm:ssZ) or true/false; put $(name) between quotes to use it as text",
	//     "retryable": false
	//   },
	//   "duration_ms": 0,
	//   "attempt": 0
	// }
}

// An Insert with external_id upserts: sending the same job twice updates
// the record the first one created.
func ExampleExecutor_Handle_upsert() {
	sim, err := sfsim.Start("127.0.0.1:0", sfsim.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	client, _ := salesforce.New(salesforce.StaticToken(sim.IssueToken("").AccessToken, sim.InstanceURL()))
	ex, _ := blocks.NewExecutor(blocks.StaticAccounts{Default: "main", Clients: map[string]blocks.SalesforceAPI{"main": client}})

	job := []byte(`{
		"object": "Case",
		"fields": {"Subject": "Call from $(caller)", "Origin": "Phone"},
		"variables": {"caller": "Ada Byron", "call_id": "c-77"},
		"external_id": {"field": "External_Id__c", "value": "call-$(call_id)"}
	}`)
	first := ex.Handle(context.Background(), sfblocks.Insert, job)
	second := ex.Handle(context.Background(), sfblocks.Insert, job)
	fmt.Println(first.Status, *first.Created, second.Status, *second.Created, first.ObjectID == second.ObjectID)
	// Output:
	// ok true ok false true
}
