package main

import (
	"fmt"
	"testing"
)

func TestParsePrefixes(t *testing.T) {
	got, err := parsePrefixes("10.0.0.0/8, 127.0.0.1,::1, 192.168.1.7/24")
	if err != nil || fmt.Sprint(got) != "[10.0.0.0/8 127.0.0.1/32 ::1/128 192.168.1.0/24]" {
		t.Errorf("parsed %v %v", got, err)
	}
	if _, err := parsePrefixes("10.0.0.0/8,proxy.local"); err == nil {
		t.Error("a host name was taken for an address")
	}
	if got, err := parsePrefixes(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
}
