package main

import "io"

func listen(args []string, stdout, stderr io.Writer) error     { return usagef("not yet") }
func events(args []string, stdout, stderr io.Writer) error     { return usagef("not yet") }
func quarantine(args []string, stdout, stderr io.Writer) error { return usagef("not yet") }
