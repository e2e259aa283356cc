// Command sdkit-kube-apiserver is a small Kubernetes API server for sdkit's integration tests, built on the
// real k8s.io/apiserver library (generic registry stores on etcd3 storage with the watch cache). It serves
// core/v1 namespaces and services and discovery.k8s.io/v1 endpointslices: list (with continue pagination),
// watch (with bookmarks), create / update / patch (including server-side apply) / delete, validation.
// Authentication: bearer tokens from a kube-apiserver style CSV token file. Authorization: everyone may do
// everything except the users listed in a denied-users file, which is re-read on every request.
//
// It is test infrastructure, not a Kubernetes distribution: there are no controllers, no ClusterIP
// allocation, no garbage collection and no namespace finalization.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/klog/v2"

	"sdkit.local/kube-apiserver/openapi"
)

type flags struct {
	etcdServers        string
	etcdPrefix         string
	etcdCompaction     time.Duration
	bindAddress        string
	securePort         int
	certDir            string
	tlsCertFile        string
	tlsKeyFile         string
	tokenAuthFile      string
	deniedUsersFile    string
	requireNamespace   bool
	shutdownDelay      time.Duration
	watchCache         bool
	minRequestTimeoutS int
}

func parseFlags() *flags {
	f := &flags{}
	fs := flag.CommandLine
	fs.StringVar(&f.etcdServers, "etcd-servers", "http://127.0.0.1:2379", "Comma-separated etcd client URLs.")
	fs.StringVar(&f.etcdPrefix, "etcd-prefix", "/registry", "Key prefix for everything this server stores in etcd.")
	fs.DurationVar(&f.etcdCompaction, "etcd-compaction-interval", 5*time.Minute,
		"How often the server compacts etcd itself, as kube-apiserver does (0 disables).")
	fs.StringVar(&f.bindAddress, "bind-address", "127.0.0.1", "Address to serve HTTPS on.")
	fs.IntVar(&f.securePort, "secure-port", 6443, "Port to serve HTTPS on.")
	fs.StringVar(&f.certDir, "cert-dir", "",
		"Directory for the serving certificate: apiserver.crt / apiserver.key are reused if present, else a "+
			"self-signed pair for 127.0.0.1 and localhost is generated there (required unless --tls-cert-file).")
	fs.StringVar(&f.tlsCertFile, "tls-cert-file", "", "Serving certificate (PEM); with --tls-private-key-file.")
	fs.StringVar(&f.tlsKeyFile, "tls-private-key-file", "", "Serving key (PEM).")
	fs.StringVar(&f.tokenAuthFile, "token-auth-file", "",
		"CSV token file as kube-apiserver reads it: token,user,uid[,\"group1,group2\"] (read once at start).")
	fs.StringVar(&f.deniedUsersFile, "denied-users-file", "",
		"File with one user name per line ('#' comments); those users are denied every resource request. "+
			"Re-read on every request, so it can change while the server runs. Missing file = nobody denied.")
	fs.BoolVar(&f.requireNamespace, "require-namespace", true,
		"Reject creating namespaced objects in a namespace that does not exist (like NamespaceLifecycle).")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "Delay between SIGTERM and closing the listener.")
	fs.BoolVar(&f.watchCache, "watch-cache", true, "Serve lists and watches from the watch cache.")
	fs.IntVar(&f.minRequestTimeoutS, "min-request-timeout", 1800,
		"Minimum watch timeout in seconds (the server picks a random timeout between this and twice this).")
	klog.InitFlags(fs)
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected arguments: %v", flag.Args())
	}
	if f.tokenAuthFile == "" {
		fatalf("--token-auth-file is required")
	}
	if f.certDir == "" && (f.tlsCertFile == "" || f.tlsKeyFile == "") {
		fatalf("either --cert-dir or both --tls-cert-file and --tls-private-key-file are required")
	}
	return f
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "sdkit-kube-apiserver: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	f := parseFlags()
	if err := run(f); err != nil {
		fatalf("%v", err)
	}
}

func run(f *flags) error {
	bindIP := net.ParseIP(f.bindAddress)
	if bindIP == nil {
		return fmt.Errorf("--bind-address %q is not an IP address", f.bindAddress)
	}

	// Serving: HTTPS on the given address and port, plus an in-memory loopback client for the server itself.
	serving := genericoptions.NewSecureServingOptions()
	serving.BindAddress = bindIP
	serving.BindPort = f.securePort
	serving.ServerCert.CertDirectory = f.certDir
	serving.ServerCert.PairName = "apiserver"
	serving.ServerCert.CertKey.CertFile = f.tlsCertFile
	serving.ServerCert.CertKey.KeyFile = f.tlsKeyFile
	if err := serving.MaybeDefaultWithSelfSignedCerts("127.0.0.1", []string{"localhost"},
		[]net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}

	config := genericapiserver.NewConfig(Codecs)
	config.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	config.PublicAddress = bindIP
	config.MinRequestTimeout = f.minRequestTimeoutS
	config.ShutdownDelayDuration = f.shutdownDelay
	if err := serving.WithLoopback().ApplyTo(&config.SecureServing, &config.LoopbackClientConfig); err != nil {
		return fmt.Errorf("secure serving: %w", err)
	}

	// Storage: etcd3 with the watch cache in front of it.
	storageConfig := storagebackend.NewDefaultConfig(f.etcdPrefix, Codecs.LegacyCodec(storageVersions...))
	storageConfig.Transport.ServerList = splitList(f.etcdServers)
	storageConfig.CompactionInterval = f.etcdCompaction
	etcdOptions := genericoptions.NewEtcdOptions(storageConfig)
	etcdOptions.EnableWatchCache = f.watchCache
	// No garbage collector runs here: deletes take effect at once instead of waiting for one.
	etcdOptions.EnableGarbageCollection = false
	if errs := etcdOptions.Validate(); len(errs) > 0 {
		return fmt.Errorf("etcd options: %v", errs)
	}
	if err := etcdOptions.ApplyTo(config); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}

	// Authentication and authorization.
	authn, err := newTokenAuthenticator(f.tokenAuthFile)
	if err != nil {
		return fmt.Errorf("--token-auth-file: %w", err)
	}
	config.Authentication.Authenticator = authn
	config.Authorization.Authorizer = &denyListAuthorizer{path: f.deniedUsersFile}

	// OpenAPI (needed for server-side apply's type converter, and served at /openapi/v2 and /openapi/v3).
	namer := openapinamer.NewDefinitionNamer(openAPIScheme)
	config.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIConfig.Info.Title = "sdkit-kube-apiserver"
	config.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIV3Config.Info.Title = "sdkit-kube-apiserver"

	stores, err := newStores(config.RESTOptionsGetter)
	if err != nil {
		return err
	}
	if f.requireNamespace {
		config.AdmissionControl = &namespaceExists{namespaces: stores.namespaces}
	}
	completed := config.Complete(nil)

	server, err := completed.New("sdkit-kube-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}

	core := genericapiserver.NewDefaultAPIGroupInfo("", Scheme, ParameterCodec, Codecs)
	core.PrioritizedVersions = []schema.GroupVersion{{Group: "", Version: "v1"}}
	core.VersionedResourcesStorageMap["v1"] = stores.core
	if err := server.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &core); err != nil {
		return fmt.Errorf("install core/v1: %w", err)
	}
	discovery := genericapiserver.NewDefaultAPIGroupInfo("discovery.k8s.io", Scheme, ParameterCodec, Codecs)
	discovery.PrioritizedVersions = []schema.GroupVersion{{Group: "discovery.k8s.io", Version: "v1"}}
	discovery.VersionedResourcesStorageMap["v1"] = stores.discovery
	if err := server.InstallAPIGroup(&discovery); err != nil {
		return fmt.Errorf("install discovery.k8s.io/v1: %w", err)
	}

	// Like kube-apiserver, make sure the namespaces every cluster has exist (readyz waits for this hook).
	server.AddPostStartHookOrDie("bootstrap-namespaces", func(hookCtx genericapiserver.PostStartHookContext) error {
		return ensureNamespaces(hookCtx, stores.namespaces, "default", "kube-system", "kube-public", "kube-node-lease")
	})

	klog.InfoS("sdkit-kube-apiserver starting", "address", net.JoinHostPort(f.bindAddress, fmt.Sprint(f.securePort)),
		"etcd", storageConfig.Transport.ServerList, "prefix", f.etcdPrefix, "deniedUsersFile", f.deniedUsersFile)
	ctx := genericapiserver.SetupSignalContext()
	return server.PrepareRun().RunWithContext(ctx)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
