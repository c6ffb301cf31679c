package org.elasticsearch.node;

import io.jointspace.eslauncher.EnglishAnalysisPlugin;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.http.HttpServerTransport;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;
import org.elasticsearch.transport.TransportService;
import org.elasticsearch.transport.netty4.Netty4Plugin;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Starts one genuine Elasticsearch node from the jars on the classpath, without the distribution.
 *
 * <p>It lives in {@code org.elasticsearch.node} because the {@code Node(NodeConstruction)} constructor,
 * {@code NodeConstruction.prepareConstruction} and {@code NodeServiceProvider} are package-private:
 * that is the only way to hand the node a plugin service that loads plugins from the classpath
 * ({@link MockPluginsService}) instead of from a distribution's modules folder.
 *
 * <p>Usage: {@code java -cp ... org.elasticsearch.node.LocalNodeLauncher [--ready-file=FILE] [--owner-pid=PID] -Ekey=value ...}.
 * {@code path.home} is required. With an owner pid the node shuts itself down when that process is gone
 * (test runs: a killed pytest must not leave JVMs behind on a shared machine). Once the node has started, FILE receives
 * {@code {"pid":..,"http_port":..,"transport_port":..,"node_name":..}} (written atomically), and the
 * process runs until SIGTERM/SIGINT, which closes the node cleanly.
 */
public final class LocalNodeLauncher {

    /** The plugins a distribution would load from modules/: HTTP/transport, and our english analysis. */
    static final List<Class<? extends org.elasticsearch.plugins.Plugin>> PLUGINS =
        List.of(Netty4Plugin.class, EnglishAnalysisPlugin.class);

    private LocalNodeLauncher() {}

    public static void main(String[] args) throws Exception {
        Path readyFile = null;
        long ownerPid = -1;
        Settings.Builder builder = Settings.builder()
            .put("http.type", "netty4")
            .put("transport.type", "netty4");
        for (String arg : args) {
            if (arg.startsWith("--ready-file=")) {
                readyFile = Path.of(arg.substring("--ready-file=".length()));
            } else if (arg.startsWith("--owner-pid=")) {
                ownerPid = Long.parseLong(arg.substring("--owner-pid=".length()));
            } else if (arg.startsWith("-E") && arg.contains("=")) {
                String kv = arg.substring(2);
                int eq = kv.indexOf('=');
                builder.put(kv.substring(0, eq), kv.substring(eq + 1));
            } else {
                System.err.println("unknown argument: " + arg + " (expected --ready-file=FILE, --owner-pid=PID or -Ekey=value)");
                System.exit(64);
            }
        }
        Settings settings = builder.build();
        if (settings.get("path.home") == null) {
            System.err.println("-Epath.home=DIR is required");
            System.exit(64);
        }

        // Logging must be configured before anything touches a logger, or the node dies on a null provider.
        LogConfigurator.configureESLogging();
        LogConfigurator.configureWithoutConfig(settings);

        Path home = Path.of(settings.get("path.home"));
        Files.createDirectories(home.resolve("config"));
        Environment environment = new Environment(settings, home.resolve("config"));

        // Last argument false: on the classpath the server is not a named module, so it has no exports to offer.
        PluginsLoader loader = PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false);
        NodeServiceProvider services = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, PluginsLoader pluginsLoader) {
                return new MockPluginsService(env.settings(), env, PLUGINS);
            }
        };
        Node node = new Node(NodeConstruction.prepareConstruction(environment, loader, services, true));

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.prepareForClose();
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "jointspace-node-shutdown"));

        if (ownerPid > 0) {
            // System.exit runs the shutdown hook above, so the node still closes cleanly.
            ProcessHandle.of(ownerPid).ifPresentOrElse(
                owner -> owner.onExit().thenRun(() -> System.exit(0)),
                () -> System.exit(0));
        }
        node.start();
        if (readyFile != null) {
            writeReadyFile(readyFile, node);
        }
        // Node threads may all be daemons: hold the JVM open until the shutdown hook has run.
        stopped.await();
    }

    private static void writeReadyFile(Path readyFile, Node node) throws IOException {
        int httpPort = node.injector().getInstance(HttpServerTransport.class).boundAddress().publishAddress().getPort();
        int transportPort = node.injector().getInstance(TransportService.class).boundAddress().publishAddress().getPort();
        String json = String.format(
            "{\"pid\": %d, \"http_port\": %d, \"transport_port\": %d, \"node_name\": \"%s\"}%n",
            ProcessHandle.current().pid(), httpPort, transportPort, node.settings().get("node.name", ""));
        Path tmp = readyFile.resolveSibling(readyFile.getFileName() + ".tmp");
        Files.writeString(tmp, json, StandardCharsets.UTF_8);
        Files.move(tmp, readyFile, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
