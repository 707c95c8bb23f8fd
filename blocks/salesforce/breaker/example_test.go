package breaker_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/sfblocks/sfblocks/blocks/salesforce/breaker"
)

// An org that answers 503 to everything: after five failures the account's
// breaker opens, and further calls fail at once without reaching it.
func Example() {
	var reached int
	org := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer org.Close()

	set, err := breaker.NewSet(breaker.Settings{}) // the defaults
	if err != nil {
		panic(err)
	}
	hc := set.For("prod").Client(org.Client())
	for range 8 {
		res, err := hc.Get(org.URL + "/services/data/v66.0/limits")
		if err != nil {
			var open *breaker.OpenError
			fmt.Println("refused:", errors.Is(err, breaker.ErrOpen), errors.As(err, &open) && open.Account == "prod")
			continue
		}
		res.Body.Close()
		fmt.Println(res.StatusCode)
	}
	_, open := set.For("prod").OpenUntil()
	fmt.Println("state:", set.For("prod").State(), open, "reached:", reached)
	// Output:
	// 503
	// 503
	// 503
	// 503
	// 503
	// refused: true true
	// refused: true true
	// refused: true true
	// state: open true reached: 5
}
