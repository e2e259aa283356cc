package main

// Defaulting and validation for the served types. kube-apiserver's own rules live in k8s.io/kubernetes, which
// Debian does not package; these follow them for the fields service discovery cares about (names, ports,
// addresses, address types, immutability) and answer with the same 422 Invalid errors.

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	maxEndpointsPerSlice = 1000
	maxAddresses         = 100
	maxSlicePorts        = 20000
)

var (
	supportedProtocols = sets.New(corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)
	supportedSvcTypes  = sets.New(corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort,
		corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)
	supportedAddrTypes = sets.New(discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6,
		discoveryv1.AddressTypeFQDN)
	metadataPath = field.NewPath("metadata")
)

// ---- Namespace ----

func defaultNamespace(ns *corev1.Namespace) {
	if ns.Name != "" {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	}
	if ns.Status.Phase == "" {
		ns.Status.Phase = corev1.NamespaceActive
	}
}

func prepareNamespace(ns, old *corev1.Namespace) {
	if old != nil {
		ns.Status = old.Status // status is not written through the main resource
	} else {
		ns.Status = corev1.NamespaceStatus{}
	}
	defaultNamespace(ns)
}

func validateNamespace(ns, old *corev1.Namespace) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&ns.ObjectMeta, false,
		apimachineryvalidation.ValidateNamespaceName, metadataPath)
	if old != nil {
		errs = append(errs, apimachineryvalidation.ValidateObjectMetaUpdate(&ns.ObjectMeta, &old.ObjectMeta, metadataPath)...)
	}
	return errs
}

// ---- Service ----

func defaultService(svc *corev1.Service) {
	if svc.Spec.Type == "" {
		svc.Spec.Type = corev1.ServiceTypeClusterIP
	}
	if svc.Spec.SessionAffinity == "" {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort == intstr.FromInt32(0) || p.TargetPort == intstr.FromString("") {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.InternalTrafficPolicy == nil {
		cluster := corev1.ServiceInternalTrafficPolicyCluster
		svc.Spec.InternalTrafficPolicy = &cluster
	}
	if (svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer) &&
		svc.Spec.ExternalTrafficPolicy == "" {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	if svc.Spec.ClusterIP != "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	} else if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) > 0 {
		svc.Spec.ClusterIP = svc.Spec.ClusterIPs[0]
	}
}

func prepareService(svc, old *corev1.Service) {
	if old == nil {
		svc.Status = corev1.ServiceStatus{}
		return
	}
	svc.Status = old.Status // status is written through services/status only
	// An update that leaves out the cluster IP keeps the one the service has (as kube-apiserver does for
	// allocated values).
	if svc.Spec.ClusterIP == "" && len(svc.Spec.ClusterIPs) == 0 {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
	}
}

func prepareServiceStatus(svc, old *corev1.Service) {
	svc.Spec = old.Spec // spec is not written through services/status
}

func validateService(svc, old *corev1.Service) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&svc.ObjectMeta, true,
		apimachineryvalidation.NameIsDNS1035Label, metadataPath)
	spec := field.NewPath("spec")
	if !supportedSvcTypes.Has(svc.Spec.Type) {
		errs = append(errs, field.NotSupported(spec.Child("type"), svc.Spec.Type, sets.List(supportedSvcTypes)))
	}
	headless := svc.Spec.ClusterIP == corev1.ClusterIPNone
	if svc.Spec.ClusterIP != "" && !headless {
		errs = append(errs, validation.IsValidIP(spec.Child("clusterIP"), svc.Spec.ClusterIP)...)
	}
	if len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] != svc.Spec.ClusterIP {
		errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), svc.Spec.ClusterIPs[0],
			"must be equal to spec.clusterIP"))
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if svc.Spec.ExternalName == "" {
			errs = append(errs, field.Required(spec.Child("externalName"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Subdomain(svc.Spec.ExternalName) {
				errs = append(errs, field.Invalid(spec.Child("externalName"), svc.Spec.ExternalName, msg))
			}
		}
	} else if len(svc.Spec.Ports) == 0 && !headless {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}
	if svc.Spec.SessionAffinity != corev1.ServiceAffinityNone && svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
		errs = append(errs, field.NotSupported(spec.Child("sessionAffinity"), svc.Spec.SessionAffinity,
			[]corev1.ServiceAffinity{corev1.ServiceAffinityNone, corev1.ServiceAffinityClientIP}))
	}
	errs = append(errs, metav1validation.ValidateLabels(svc.Spec.Selector, spec.Child("selector"))...)

	names := sets.New[string]()
	seen := sets.New[string]()
	for i, p := range svc.Spec.Ports {
		path := spec.Child("ports").Index(i)
		if len(svc.Spec.Ports) > 1 && p.Name == "" {
			errs = append(errs, field.Required(path.Child("name"), "must be specified when there is more than one port"))
		}
		if p.Name != "" {
			for _, msg := range validation.IsDNS1123Label(p.Name) {
				errs = append(errs, field.Invalid(path.Child("name"), p.Name, msg))
			}
			if names.Has(p.Name) {
				errs = append(errs, field.Duplicate(path.Child("name"), p.Name))
			}
			names.Insert(p.Name)
		}
		for _, msg := range validation.IsValidPortNum(int(p.Port)) {
			errs = append(errs, field.Invalid(path.Child("port"), p.Port, msg))
		}
		if !supportedProtocols.Has(p.Protocol) {
			errs = append(errs, field.NotSupported(path.Child("protocol"), p.Protocol, sets.List(supportedProtocols)))
		}
		key := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if seen.Has(key) {
			errs = append(errs, field.Duplicate(path, key))
		}
		seen.Insert(key)
		errs = append(errs, validateTargetPort(p.TargetPort, path.Child("targetPort"))...)
		if p.NodePort != 0 {
			if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
				errs = append(errs, field.Forbidden(path.Child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
			}
			for _, msg := range validation.IsValidPortNum(int(p.NodePort)) {
				errs = append(errs, field.Invalid(path.Child("nodePort"), p.NodePort, msg))
			}
		}
	}
	if old != nil {
		errs = append(errs, apimachineryvalidation.ValidateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta, metadataPath)...)
		if old.Spec.ClusterIP != "" && svc.Spec.ClusterIP != old.Spec.ClusterIP &&
			old.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.Type != corev1.ServiceTypeExternalName {
			errs = append(errs, field.Invalid(spec.Child("clusterIP"), svc.Spec.ClusterIP, "field is immutable"))
		}
	}
	return errs
}

func validateServiceStatus(svc, old *corev1.Service) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMetaUpdate(&svc.ObjectMeta, &old.ObjectMeta, metadataPath)
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			errs = append(errs, validation.IsValidIP(field.NewPath("status", "loadBalancer", "ingress").Index(i).Child("ip"), ing.IP)...)
		}
	}
	return errs
}

func validateTargetPort(tp intstr.IntOrString, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if tp.Type == intstr.String {
		for _, msg := range validation.IsValidPortName(tp.StrVal) {
			errs = append(errs, field.Invalid(path, tp.StrVal, msg))
		}
	} else {
		for _, msg := range validation.IsValidPortNum(tp.IntValue()) {
			errs = append(errs, field.Invalid(path, tp.IntValue(), msg))
		}
	}
	return errs
}

// ---- EndpointSlice ----

func defaultEndpointSlice(s *discoveryv1.EndpointSlice) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Name == nil {
			empty := ""
			p.Name = &empty
		}
		if p.Protocol == nil {
			tcp := corev1.ProtocolTCP
			p.Protocol = &tcp
		}
	}
}

func prepareEndpointSlice(s, old *discoveryv1.EndpointSlice) {
	defaultEndpointSlice(s)
}

func validateEndpointSlice(s, old *discoveryv1.EndpointSlice) field.ErrorList {
	errs := apimachineryvalidation.ValidateObjectMeta(&s.ObjectMeta, true,
		apimachineryvalidation.NameIsDNSSubdomain, metadataPath)
	if !supportedAddrTypes.Has(s.AddressType) {
		errs = append(errs, field.NotSupported(field.NewPath("addressType"), s.AddressType, sets.List(supportedAddrTypes)))
	}
	endpointsPath := field.NewPath("endpoints")
	if len(s.Endpoints) > maxEndpointsPerSlice {
		errs = append(errs, field.TooMany(endpointsPath, len(s.Endpoints), maxEndpointsPerSlice))
	}
	for i, ep := range s.Endpoints {
		path := endpointsPath.Index(i)
		addrPath := path.Child("addresses")
		if len(ep.Addresses) == 0 {
			errs = append(errs, field.Required(addrPath, "must contain at least 1 address"))
		} else if len(ep.Addresses) > maxAddresses {
			errs = append(errs, field.TooMany(addrPath, len(ep.Addresses), maxAddresses))
		}
		for j, addr := range ep.Addresses {
			errs = append(errs, validateSliceAddress(addr, s.AddressType, addrPath.Index(j))...)
		}
		if ep.Hostname != nil {
			for _, msg := range validation.IsDNS1123Label(*ep.Hostname) {
				errs = append(errs, field.Invalid(path.Child("hostname"), *ep.Hostname, msg))
			}
		}
		if ep.NodeName != nil {
			for _, msg := range validation.IsDNS1123Subdomain(*ep.NodeName) {
				errs = append(errs, field.Invalid(path.Child("nodeName"), *ep.NodeName, msg))
			}
		}
	}
	portsPath := field.NewPath("ports")
	if len(s.Ports) > maxSlicePorts {
		errs = append(errs, field.TooMany(portsPath, len(s.Ports), maxSlicePorts))
	}
	names := sets.New[string]()
	for i, p := range s.Ports {
		path := portsPath.Index(i)
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != "" {
			for _, msg := range validation.IsDNS1123Label(name) {
				errs = append(errs, field.Invalid(path.Child("name"), name, msg))
			}
		}
		if names.Has(name) {
			errs = append(errs, field.Duplicate(path.Child("name"), name))
		}
		names.Insert(name)
		if p.Protocol == nil {
			errs = append(errs, field.Required(path.Child("protocol"), ""))
		} else if !supportedProtocols.Has(*p.Protocol) {
			errs = append(errs, field.NotSupported(path.Child("protocol"), *p.Protocol, sets.List(supportedProtocols)))
		}
		if p.Port != nil {
			for _, msg := range validation.IsValidPortNum(int(*p.Port)) {
				errs = append(errs, field.Invalid(path.Child("port"), *p.Port, msg))
			}
		}
		if p.AppProtocol != nil {
			errs = append(errs, metav1validation.ValidateLabelName(*p.AppProtocol, path.Child("appProtocol"))...)
		}
	}
	errs = append(errs, metav1validation.ValidateLabels(s.Labels, metadataPath.Child("labels"))...)
	if old != nil {
		errs = append(errs, apimachineryvalidation.ValidateObjectMetaUpdate(&s.ObjectMeta, &old.ObjectMeta, metadataPath)...)
		if s.AddressType != old.AddressType {
			errs = append(errs, field.Invalid(field.NewPath("addressType"), s.AddressType, "field is immutable"))
		}
	}
	return errs
}

func validateSliceAddress(addr string, t discoveryv1.AddressType, path *field.Path) field.ErrorList {
	switch t {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return field.ErrorList{field.Invalid(path, addr, "must be a valid IP address")}
		}
		if t == discoveryv1.AddressTypeIPv4 && !ip.Is4() {
			return field.ErrorList{field.Invalid(path, addr, "must be a valid IPv4 address")}
		}
		if t == discoveryv1.AddressTypeIPv6 && (!ip.Is6() || ip.Is4In6()) {
			return field.ErrorList{field.Invalid(path, addr, "must be a valid IPv6 address")}
		}
		return validation.IsValidIP(path, addr)
	case discoveryv1.AddressTypeFQDN:
		return validation.IsFullyQualifiedDomainName(path, addr)
	}
	return nil
}
