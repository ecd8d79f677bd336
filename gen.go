package parsl

//go:generate go run ./internal/gen/apps app_gen.go
