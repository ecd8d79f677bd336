package httpstage

import (
	"fmt"
	"net/http"
)

// StatusError reports an HTTP response that is not the file: the URL, the
// status, and what to do about it.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string // e.g. "404 Not Found"
}

func (e *StatusError) Error() string {
	hint := ""
	switch e.StatusCode {
	case http.StatusNotFound, http.StatusGone:
		hint = "; check that the URL is correct and the file is published"
	case http.StatusUnauthorized:
		hint = "; the server requires credentials, which HTTP staging does not send: make the file public or give the provider a Client that authenticates"
	case http.StatusForbidden:
		hint = "; the server refused access: check permissions on the server"
	default:
		if e.Temporary() {
			hint = "; the server failed, try again later"
		}
	}
	return fmt.Sprintf("staging: GET %s: server answered %s%s", e.URL, e.Status, hint)
}

// Temporary reports whether retrying may help: server errors, request
// timeout and rate limiting.
func (e *StatusError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusTooManyRequests
}

// IntegrityError reports a download whose content does not match what the
// server declared: wrong size, too many bytes, or a checksum mismatch. The
// partial file has been removed. Retrying is not attempted, because a
// server that lies about its content will usually do so again.
type IntegrityError struct {
	URL  string
	What string // "size", "oversend", "checksum", "range"
	Want string
	Got  string
}

func (e *IntegrityError) Error() string {
	switch e.What {
	case "oversend":
		return fmt.Sprintf("staging: GET %s: server sent more than the %s bytes it declared; download refused, check the server", e.URL, e.Want)
	case "range":
		return fmt.Sprintf("staging: GET %s: resumed response covers %s, want %s; download refused", e.URL, e.Got, e.Want)
	}
	return fmt.Sprintf("staging: GET %s: %s mismatch: server declared %s, received %s; download discarded, the file may have changed during transfer or the server is faulty", e.URL, e.What, e.Want, e.Got)
}
