package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/duplexsync/duplex/scripting"
)

func main() {
	n := 64 << 10
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	forms := map[string]string{
		"parens":   strings.Repeat("(", n/2-2) + "1" + strings.Repeat(")", n/2-2),
		"1+ chain": strings.Repeat("1+", n/2-2) + "1",
		"x+ chain": strings.Repeat("status+", n/7-2) + "status",
		"not":      strings.Repeat("!", n-10) + "true",
		"neg":      strings.Repeat("-", n-10) + "1",
		"arrays":   strings.Repeat("[", n/2-2) + strings.Repeat("]", n/2-2),
		"ternary":  strings.Repeat("true ? 1 : ", n/11-2) + "1",
		"and":      strings.Repeat("true && ", n/8-2) + "true",
		"in":       strings.Repeat("\"a\" in labels || ", n/18-2) + "true",
		"members":  "labels" + strings.Repeat("[0]", n/3-4),
	}
	env := map[string]any{"status": "", "labels": []string{}}
	for name, src := range forms {
		t := time.Now()
		_, err := scripting.CompileTrigger(src, env)
		e := fmt.Sprint(err)
		if len(e) > 80 {
			e = e[:80]
		}
		fmt.Printf("%-9s %8d bytes %12v err=%s\n", name, len(src), time.Since(t), e)
	}
}
