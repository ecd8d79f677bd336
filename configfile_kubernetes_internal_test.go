//go:build parsl_kubernetes

package parsl

func init() { kindKeys["kubernetes"] = kubernetesFile{} }
