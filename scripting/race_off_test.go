//go:build !race

package scripting

const raceBuild = false
