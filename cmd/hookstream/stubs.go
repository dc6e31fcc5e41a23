package main

import "io"

func events(args []string, stdout, stderr io.Writer) error     { return usagef("not yet") }
func quarantine(args []string, stdout, stderr io.Writer) error { return usagef("not yet") }
