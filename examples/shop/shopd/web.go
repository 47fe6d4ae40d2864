package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
)

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"cents": func(c int) float64 { return float64(c) / 100 },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>autobackup example shop</title></head>
<body>
<h1>autobackup example shop</h1>
<p>Data lives in the <code>dbdata</code> volume of the <code>db</code> service.
Run <code>docker autobackup run</code> next to compose.yaml to back it up.</p>
<h2>Products</h2>
<ul>{{range .Products}}
<li>{{.Name}} ({{.ID}}), {{printf "%.2f" (cents .PriceCents)}} €
<form method="post" action="/order" style="display:inline"><input type="hidden" name="product" value="{{.ID}}"><button>order</button></form></li>{{end}}
</ul>
<h2>Orders ({{len .Orders}})</h2>
<ul>{{range .Orders}}
<li>{{.Created.Format "2006-01-02 15:04:05"}} {{.Quantity}} × {{.Product}}</li>{{end}}
</ul>
</body></html>
`))

// webHandler serves the front:
//
//	GET  /healthz  200 when app answers its own health check
//	GET  /         HTML page with products and orders
//	POST /order    form post: orders one product, redirects to /
//	     /api/...  proxied to app
func webHandler(appURL *url.URL) http.Handler {
	app := dbClient{base: strings.TrimSuffix(appURL.String(), "/")} // same HTTP+JSON helpers
	mux := http.NewServeMux()
	mux.Handle("/api/", httputil.NewSingleHostReverseProxy(appURL))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		b, code, err := app.do(r.Context(), http.MethodGet, "/healthz", nil)
		if err != nil || code != http.StatusOK {
			http.Error(w, fmt.Sprintf("app unhealthy: %v %d %s", err, code, bytes.TrimSpace(b)), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		var data struct {
			Products []Product
			Orders   []Order
		}
		for path, v := range map[string]any{"/api/products": &data.Products, "/api/orders": &data.Orders} {
			b, code, err := app.do(r.Context(), http.MethodGet, path, nil)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%s: %d %s", path, code, bytes.TrimSpace(b))
			}
			if err == nil {
				err = json.Unmarshal(b, v)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, data); err != nil {
			log.Printf("render: %v", err)
		}
	})
	mux.HandleFunc("POST /order", func(w http.ResponseWriter, r *http.Request) {
		body, _ := json.Marshal(map[string]any{"product": r.FormValue("product"), "quantity": 1})
		b, code, err := app.do(r.Context(), http.MethodPost, "/api/orders", body)
		if err != nil || code != http.StatusCreated {
			http.Error(w, fmt.Sprintf("order: %v %d %s", err, code, bytes.TrimSpace(b)), http.StatusBadGateway)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	return mux
}

func runWeb(args []string) error {
	fl := flag.NewFlagSet("web", flag.ContinueOnError)
	listen := fl.String("listen", ":8080", "address to listen on")
	appURL := fl.String("app", "http://app:8080", "base URL of `shopd app`")
	if err := fl.Parse(args); err != nil {
		return err
	}
	u, err := url.Parse(*appURL)
	if err != nil {
		return fmt.Errorf("--app: %w", err)
	}
	return serve(*listen, webHandler(u))
}
