package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/admission"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage/names"
)

// strategy implements the create / update / delete strategies of one resource with plain functions.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	namespaced      bool
	prepareCreate   func(obj runtime.Object)
	prepareUpdate   func(obj, old runtime.Object)
	validate        func(obj runtime.Object) field.ErrorList
	validateUpdate  func(obj, old runtime.Object) field.ErrorList
	allowCreateOnUp bool
}

func (s *strategy) NamespaceScoped() bool { return s.namespaced }

func (s *strategy) PrepareForCreate(_ context.Context, obj runtime.Object) {
	if s.prepareCreate != nil {
		s.prepareCreate(obj)
	}
}

func (s *strategy) PrepareForUpdate(_ context.Context, obj, old runtime.Object) {
	if s.prepareUpdate != nil {
		s.prepareUpdate(obj, old)
	}
}

func (s *strategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	if s.validate == nil {
		return nil
	}
	return s.validate(obj)
}

func (s *strategy) ValidateUpdate(_ context.Context, obj, old runtime.Object) field.ErrorList {
	return s.validateUpdate(obj, old)
}

func (s *strategy) WarningsOnCreate(context.Context, runtime.Object) []string { return nil }
func (s *strategy) WarningsOnUpdate(context.Context, runtime.Object, runtime.Object) []string {
	return nil
}
func (s *strategy) Canonicalize(runtime.Object)    {}
func (s *strategy) AllowCreateOnUpdate() bool      { return s.allowCreateOnUp }
func (s *strategy) AllowUnconditionalUpdate() bool { return true }

// resource is a generic registry store plus the discovery details kube-apiserver publishes for it.
type resource struct {
	*genericregistry.Store
	shortNames []string
	categories []string
}

func (r *resource) ShortNames() []string { return r.shortNames }
func (r *resource) Categories() []string { return r.categories }

var (
	_ rest.ShortNamesProvider = &resource{}
	_ rest.CategoriesProvider = &resource{}
)

type storeSpec struct {
	group, plural, singular string
	newFunc, newListFunc    func() runtime.Object
	strategy                *strategy
	shortNames              []string
}

func newStore(getter generic.RESTOptionsGetter, spec storeSpec) (*resource, error) {
	gr := schema.GroupResource{Group: spec.group, Resource: spec.plural}
	store := &genericregistry.Store{
		NewFunc:                   spec.newFunc,
		NewListFunc:               spec.newListFunc,
		DefaultQualifiedResource:  gr,
		SingularQualifiedResource: schema.GroupResource{Group: spec.group, Resource: spec.singular},
		CreateStrategy:            spec.strategy,
		UpdateStrategy:            spec.strategy,
		DeleteStrategy:            spec.strategy,
		TableConvertor:            rest.NewDefaultTableConvertor(gr),
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: getter}); err != nil {
		return nil, fmt.Errorf("store for %s: %w", gr, err)
	}
	return &resource{Store: store, shortNames: spec.shortNames, categories: []string{"all"}}, nil
}

type stores struct {
	namespaces *resource
	core       map[string]rest.Storage
	discovery  map[string]rest.Storage
}

func newStores(getter generic.RESTOptionsGetter) (*stores, error) {
	namespaces, err := newStore(getter, storeSpec{
		group: "", plural: "namespaces", singular: "namespace",
		newFunc:     func() runtime.Object { return &corev1.Namespace{} },
		newListFunc: func() runtime.Object { return &corev1.NamespaceList{} },
		shortNames:  []string{"ns"},
		strategy: &strategy{
			ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: false,
			prepareCreate: func(obj runtime.Object) { prepareNamespace(obj.(*corev1.Namespace), nil) },
			prepareUpdate: func(obj, old runtime.Object) {
				prepareNamespace(obj.(*corev1.Namespace), old.(*corev1.Namespace))
			},
			validate: func(obj runtime.Object) field.ErrorList { return validateNamespace(obj.(*corev1.Namespace), nil) },
			validateUpdate: func(obj, old runtime.Object) field.ErrorList {
				return validateNamespace(obj.(*corev1.Namespace), old.(*corev1.Namespace))
			},
		},
	})
	if err != nil {
		return nil, err
	}
	namespaces.categories = nil // kube-apiserver does not list namespaces under "all"

	services, err := newStore(getter, storeSpec{
		group: "", plural: "services", singular: "service",
		newFunc:     func() runtime.Object { return &corev1.Service{} },
		newListFunc: func() runtime.Object { return &corev1.ServiceList{} },
		shortNames:  []string{"svc"},
		strategy: &strategy{
			ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
			prepareCreate: func(obj runtime.Object) { prepareService(obj.(*corev1.Service), nil) },
			prepareUpdate: func(obj, old runtime.Object) {
				prepareService(obj.(*corev1.Service), old.(*corev1.Service))
			},
			validate: func(obj runtime.Object) field.ErrorList { return validateService(obj.(*corev1.Service), nil) },
			validateUpdate: func(obj, old runtime.Object) field.ErrorList {
				return validateService(obj.(*corev1.Service), old.(*corev1.Service))
			},
		},
	})
	if err != nil {
		return nil, err
	}

	servicesStatus := newStatusREST(services.Store, &strategy{
		ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
		prepareUpdate: func(obj, old runtime.Object) {
			prepareServiceStatus(obj.(*corev1.Service), old.(*corev1.Service))
		},
		validateUpdate: func(obj, old runtime.Object) field.ErrorList {
			return validateServiceStatus(obj.(*corev1.Service), old.(*corev1.Service))
		},
	})

	slices, err := newStore(getter, storeSpec{
		group: discoveryv1.GroupName, plural: "endpointslices", singular: "endpointslice",
		newFunc:     func() runtime.Object { return &discoveryv1.EndpointSlice{} },
		newListFunc: func() runtime.Object { return &discoveryv1.EndpointSliceList{} },
		strategy: &strategy{
			ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
			prepareCreate: func(obj runtime.Object) { prepareEndpointSlice(obj.(*discoveryv1.EndpointSlice), nil) },
			prepareUpdate: func(obj, old runtime.Object) {
				prepareEndpointSlice(obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice))
			},
			validate: func(obj runtime.Object) field.ErrorList {
				return validateEndpointSlice(obj.(*discoveryv1.EndpointSlice), nil)
			},
			validateUpdate: func(obj, old runtime.Object) field.ErrorList {
				return validateEndpointSlice(obj.(*discoveryv1.EndpointSlice), old.(*discoveryv1.EndpointSlice))
			},
		},
	})
	if err != nil {
		return nil, err
	}
	slices.categories = nil

	return &stores{
		namespaces: namespaces,
		core: map[string]rest.Storage{
			"namespaces": namespaces, "services": services, "services/status": servicesStatus,
		},
		discovery: map[string]rest.Storage{"endpointslices": slices},
	}, nil
}

// namespaceExists rejects creating a namespaced object in a namespace that does not exist, with the same
// 404 NotFound that kube-apiserver's NamespaceLifecycle admission plugin answers.
type namespaceExists struct {
	namespaces *resource
}

var _ admission.ValidationInterface = &namespaceExists{}

func (n *namespaceExists) Handles(op admission.Operation) bool { return op == admission.Create }

func (n *namespaceExists) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	ns := a.GetNamespace()
	if ns == "" || a.GetKind().GroupKind() == (schema.GroupKind{Kind: "Namespace"}) {
		return nil
	}
	_, err := n.namespaces.Get(ctx, ns, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, ns)
	}
	return err
}

// statusREST serves a status subresource: get, update and patch of the same objects, where updates keep the
// spec and write only the status (see the strategy's prepareUpdate).
type statusREST struct {
	store *genericregistry.Store
}

func newStatusREST(main *genericregistry.Store, s *strategy) *statusREST {
	store := *main
	store.CreateStrategy = nil
	store.UpdateStrategy = s
	return &statusREST{store: &store}
}

var (
	_ rest.Getter  = &statusREST{}
	_ rest.Updater = &statusREST{}
)

func (r *statusREST) New() runtime.Object { return r.store.New() }

// Destroy does nothing: the storage is shared with the main resource, which destroys it.
func (r *statusREST) Destroy() {}

func (r *statusREST) Get(ctx context.Context, name string, options *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, options)
}

func (r *statusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo,
	createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, _ bool,
	options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// A status update never creates the object.
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// ensureNamespaces creates the given namespaces unless they exist, retrying while etcd is not reachable.
func ensureNamespaces(ctx context.Context, namespaces *resource, names ...string) error {
	for _, name := range names {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
			defaultNamespace(ns)
			_, err := namespaces.Create(genericapirequest.WithNamespace(ctx, ""), ns, rest.ValidateAllObjectFunc,
				&metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				return true, nil
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("creating namespace %q: %w", name, err)
		}
	}
	return nil
}
