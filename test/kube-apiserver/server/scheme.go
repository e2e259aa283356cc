package main

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// Scheme holds the served types. kube-apiserver keeps separate "internal" Go types and converts to and from
// them; this server has only the published v1 types (k8s.io/api), so it registers the very same Go types as
// the internal version too. Converting between a type and itself is a no-op in runtime.Scheme, so requests
// decode v1 -> "internal" (the same struct), storage and the watch cache keep it, and responses encode it
// back as v1.
var (
	Scheme         = runtime.NewScheme()
	Codecs         = serializer.NewCodecFactory(Scheme)
	ParameterCodec = runtime.NewParameterCodec(Scheme)

	// openAPIScheme has the external registrations only, so the OpenAPI x-kubernetes-group-version-kind
	// extensions list v1 kinds and no "__internal" ones.
	openAPIScheme = runtime.NewScheme()

	coreInternal      = schema.GroupVersion{Group: "", Version: runtime.APIVersionInternal}
	discoveryInternal = schema.GroupVersion{Group: discoveryv1.GroupName, Version: runtime.APIVersionInternal}

	// storageVersions: what objects are encoded as in etcd (what kube-apiserver stores too).
	storageVersions = []schema.GroupVersion{corev1.SchemeGroupVersion, discoveryv1.SchemeGroupVersion}
)

func init() {
	for _, s := range []*runtime.Scheme{Scheme, openAPIScheme} {
		utilruntime.Must(corev1.AddToScheme(s))
		utilruntime.Must(discoveryv1.AddToScheme(s))
	}
	Scheme.AddKnownTypes(coreInternal,
		&corev1.Namespace{}, &corev1.NamespaceList{},
		&corev1.Service{}, &corev1.ServiceList{},
	)
	Scheme.AddKnownTypes(discoveryInternal, &discoveryv1.EndpointSlice{}, &discoveryv1.EndpointSliceList{})
	Scheme.AddTypeDefaultingFunc(&corev1.Namespace{}, func(obj interface{}) { defaultNamespace(obj.(*corev1.Namespace)) })
	Scheme.AddTypeDefaultingFunc(&corev1.Service{}, func(obj interface{}) { defaultService(obj.(*corev1.Service)) })
	Scheme.AddTypeDefaultingFunc(&discoveryv1.EndpointSlice{}, func(obj interface{}) {
		defaultEndpointSlice(obj.(*discoveryv1.EndpointSlice))
	})
	Scheme.AddTypeDefaultingFunc(&corev1.ServiceList{}, func(obj interface{}) {
		list := obj.(*corev1.ServiceList)
		for i := range list.Items {
			defaultService(&list.Items[i])
		}
	})
	Scheme.AddTypeDefaultingFunc(&discoveryv1.EndpointSliceList{}, func(obj interface{}) {
		list := obj.(*discoveryv1.EndpointSliceList)
		for i := range list.Items {
			defaultEndpointSlice(&list.Items[i])
		}
	})
}
