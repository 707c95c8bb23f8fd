package simdb

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var updateSeed = flag.Bool("update-seed", false, "regenerate seed/*.json in this package")

// seedDir holds the seed files embedded by seed.go.
var seedDir = "seed"

// TestGenerateSeed is the seed generator. It rebuilds the seed records
// deterministically and checks that the committed files match; with
// -update-seed it rewrites them:
//
//	go test ./blocks/salesforce/sfsim/simdb -run TestGenerateSeed -update-seed
func TestGenerateSeed(t *testing.T) {
	files := generateSeed()
	for _, name := range seedOrder {
		data, err := json.MarshalIndent(files[name], "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, '\n')
		path := filepath.Join(seedDir, name+".json")
		if *updateSeed {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s is stale: run go test ./blocks/salesforce/sfsim/simdb -run TestGenerateSeed -update-seed", path)
		}
	}
}

type seedRec = map[string]any

func generateSeed() map[string][]seedRec {
	rng := rand.New(rand.NewPCG(20240102, 42))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	base := time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)
	stamp := func(i int) string {
		return base.Add(time.Duration(i) * 97 * time.Minute).Format("2006-01-02T15:04:05.000+0000")
	}
	seq := 0
	next := func(prefix string) string { seq++; return makeID(prefix, seq) }
	phone := func() string {
		area := []string{"212", "312", "415", "503", "617", "646", "702", "808"}[rng.IntN(8)]
		n := 200 + rng.IntN(7800)
		switch rng.IntN(3) {
		case 0:
			return fmt.Sprintf("+1 (%s) 555-%04d", area, n)
		case 1:
			return fmt.Sprintf("+1 %s 555 %04d", area, n)
		}
		return fmt.Sprintf("%s-555-%04d", area, n)
	}
	firsts := []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Amara", "Kenji", "Priya", "Mateo", "Chloé", "Zoë", "Björn", "Aisling", "Tomasz", "Lucía"}
	lasts := []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Okafor", "Tanaka", "Patel", "Novak", "Müller", "García-Ruiz", "O'Neill", "Nguyen", "Kowalski"}
	words := []string{"Global", "United", "Pacific", "Northern", "Summit", "Blue", "Silver", "Bright", "Pioneer", "Apex", "Harbor", "Evergreen", "Redwood", "Granite", "Cobalt"}
	nouns := []string{"Logistics", "Health", "Energy", "Foods", "Systems", "Telecom", "Insurance", "Media", "Motors", "Bank", "Retail", "Labs"}
	suffix := []string{"Inc.", "LLC", "Ltd", "Group", "Corp.", "& Co."}
	industries := []string{"Technology", "Healthcare", "Energy", "Retail", "Finance", "Telecommunications", "Manufacturing", "Media"}
	cities := []string{"San Francisco", "New York", "Chicago", "Portland", "Boston", "Las Vegas", "Honolulu", "Dublin", "Berlin", "Tokyo"}

	out := map[string][]seedRec{}
	var accounts []seedRec
	for i := 1; i <= 100; i++ {
		name := fmt.Sprintf("%s %s %s", pick(words), pick(nouns), pick(suffix))
		if i == 1 {
			name = "Acme Corporation"
		} else if i == 2 {
			name = "Globex & Initech (Holdings)"
		}
		a := seedRec{
			"Id": next("001"), "Name": name, "Phone": phone(), "Industry": pick(industries),
			"Type":        []string{"Customer - Direct", "Customer - Channel", "Prospect", "Partner"}[rng.IntN(4)],
			"BillingCity": pick(cities), "NumberOfEmployees": 10 + rng.IntN(5000),
			"AccountNumber": fmt.Sprintf("AC-%05d", 10000+i), "External_Id__c": fmt.Sprintf("ACC-%04d", i),
			"Website": fmt.Sprintf("https://www.example%d.com", i), "CreatedDate": stamp(i),
		}
		if i == 1 {
			a["Phone"], a["Industry"], a["BillingCity"] = "+1 415 555 0000", "Manufacturing", "San Francisco"
		}
		accounts = append(accounts, a)
	}
	out["Account"] = accounts

	var contacts []seedRec
	for i := 1; i <= 300; i++ {
		first, last := pick(firsts), pick(lasts)
		c := seedRec{
			"Id": next("003"), "FirstName": first, "LastName": last,
			"Email":          strings.ToLower(fmt.Sprintf("%s.%s%d@example.%s", asciiOnly(first), asciiOnly(last), i, []string{"com", "org", "net"}[rng.IntN(3)])),
			"Phone":          phone(),
			"Title":          []string{"Customer", "Office Manager", "CTO", "Buyer", "Engineer", "Director of Operations"}[rng.IntN(6)],
			"MailingCity":    pick(cities),
			"LeadSource":     []string{"Phone Inquiry", "Web", "Partner Referral", "Trade Show"}[rng.IntN(4)],
			"External_Id__c": fmt.Sprintf("CON-%04d", i),
			"CreatedDate":    stamp(i),
		}
		if rng.IntN(10) < 7 {
			c["MobilePhone"] = phone()
		}
		if rng.IntN(10) < 9 {
			c["AccountId"] = accounts[rng.IntN(len(accounts))]["Id"]
		}
		switch i {
		case 1:
			c["FirstName"], c["LastName"], c["Email"], c["Phone"], c["MobilePhone"] = "Ada", "Byron", "ada@example.com", "+1 415 555 0100", "+1 415 555 0199"
			c["AccountId"], c["Title"], c["Birthdate"] = accounts[0]["Id"], "Analyst", "1815-12-10"
		case 2:
			c["FirstName"], c["LastName"], c["Email"], c["Phone"] = "Siobhan", "O'Brien", "siobhan.obrien@example.com", "+353 1 555 0102"
			c["AccountId"] = accounts[0]["Id"]
		case 3:
			c["FirstName"], c["LastName"], c["Email"], c["Phone"] = "Grace", "Hopper", "grace@example.org", "+1 (212) 555-0103"
			delete(c, "AccountId")
			delete(c, "MobilePhone")
		case 4:
			c["FirstName"], c["LastName"], c["Email"] = "Percy", "100% Sure_Test", "percy@example.com"
		case 5, 6:
			c["Legacy_Number__c"] = "LEG-DUP"
		}
		contacts = append(contacts, c)
	}
	out["Contact"] = contacts

	var leads []seedRec
	for i := 1; i <= 100; i++ {
		first, last := pick(firsts), pick(lasts)
		l := seedRec{
			"Id": next("00Q"), "FirstName": first, "LastName": last,
			"Company": fmt.Sprintf("%s %s %s", pick(words), pick(nouns), pick(suffix)),
			"Email":   strings.ToLower(fmt.Sprintf("%s.%s.lead%d@example.net", asciiOnly(first), asciiOnly(last), i)),
			"Phone":   phone(), "City": pick(cities), "Industry": pick(industries),
			"Status":         []string{"Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"}[rng.IntN(4)],
			"LeadSource":     []string{"Phone Inquiry", "Web", "Purchased List"}[rng.IntN(3)],
			"External_Id__c": fmt.Sprintf("LEAD-%04d", i),
			"CreatedDate":    stamp(i),
		}
		if i == 1 {
			l["FirstName"], l["LastName"], l["Company"], l["Phone"], l["Email"] = "Charles", "Babbage", "Difference Engines Ltd", "+44 20 5555 0100", "charles@example.co.uk"
		}
		leads = append(leads, l)
	}
	out["Lead"] = leads

	var cases []seedRec
	subjects := []string{"Cannot log in", "Billing question", "Delivery delayed", "Product defect", "Cancel subscription", "Change of address", "Refund request", "Password reset", "Service outage", "Upgrade plan"}
	for i := 1; i <= 150; i++ {
		c := contacts[rng.IntN(len(contacts))]
		status := []string{"New", "Working", "Escalated", "Closed"}[rng.IntN(4)]
		cs := seedRec{
			"Id": next("500"), "CaseNumber": fmt.Sprintf("%08d", 1000+i), "Subject": pick(subjects),
			"Status": status, "Priority": []string{"High", "Medium", "Low"}[rng.IntN(3)],
			"Origin": []string{"Phone", "Email", "Web"}[rng.IntN(3)], "ContactId": c["Id"],
			"Description":    fmt.Sprintf("Customer reported: %s (ticket %d).", strings.ToLower(pick(subjects)), i),
			"External_Id__c": fmt.Sprintf("CASE-%04d", i),
			"CreatedDate":    stamp(i * 2),
		}
		if acc, ok := c["AccountId"]; ok {
			cs["AccountId"] = acc
		}
		if status == "Closed" {
			cs["ClosedDate"] = stamp(i*2 + 30)
		}
		if i == 1 {
			cs["ContactId"], cs["AccountId"], cs["Subject"], cs["Status"], cs["Priority"], cs["Origin"] = contacts[0]["Id"], accounts[0]["Id"], "Analytical engine overheating", "New", "High", "Phone"
			delete(cs, "ClosedDate")
		}
		cases = append(cases, cs)
	}
	out["Case"] = cases

	var tasks []seedRec
	for i := 1; i <= 200; i++ {
		call := rng.IntN(3) > 0
		tk := seedRec{
			"Id": next("00T"), "Priority": "Normal",
			"Status":         []string{"Completed", "Not Started", "In Progress"}[rng.IntN(3)],
			"ActivityDate":   base.AddDate(0, 0, rng.IntN(120)).Format("2006-01-02"),
			"External_Id__c": fmt.Sprintf("TASK-%04d", i),
			"CreatedDate":    stamp(i),
		}
		if rng.IntN(4) == 0 {
			tk["WhoId"] = leads[rng.IntN(len(leads))]["Id"]
		} else {
			c := contacts[rng.IntN(len(contacts))]
			tk["WhoId"] = c["Id"]
			if acc, ok := c["AccountId"]; ok {
				tk["WhatId"] = acc
			}
		}
		if call {
			tk["Subject"], tk["TaskSubtype"] = "Call", "Call"
			tk["CallType"] = []string{"Inbound", "Outbound"}[rng.IntN(2)]
			tk["CallDurationInSeconds"] = 15 + rng.IntN(1800)
			tk["CallObject"] = fmt.Sprintf("CALL-%06d", 100000+i)
			tk["CallDisposition"] = []string{"Resolved", "Left voicemail", "Callback requested", "Transferred"}[rng.IntN(4)]
		} else {
			tk["Subject"], tk["TaskSubtype"] = []string{"Send follow-up email", "Prepare quote", "Follow up"}[rng.IntN(3)], "Task"
		}
		if i == 1 {
			tk["WhoId"], tk["WhatId"], tk["Subject"], tk["TaskSubtype"], tk["CallType"] = contacts[0]["Id"], cases[0]["Id"], "Call", "Call", "Inbound"
			tk["CallDurationInSeconds"], tk["CallObject"], tk["Status"], tk["ActivityDate"] = 312, "CALL-000001", "Completed", "2025-01-06"
		}
		tasks = append(tasks, tk)
	}
	out["Task"] = tasks
	return out
}

func asciiOnly(s string) string {
	r := strings.NewReplacer("é", "e", "ë", "e", "ö", "o", "ü", "u", "í", "i", "'", "", " ", "", "-", "")
	return r.Replace(s)
}
