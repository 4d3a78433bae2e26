package org.ndr.opensearch;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.opensearch.Version;
import org.opensearch.action.admin.cluster.health.ClusterHealthResponse;
import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.common.unit.TimeValue;
import org.opensearch.env.Environment;
import org.opensearch.index.mapper.MapperExtrasPlugin;
import org.opensearch.index.reindex.ReindexPlugin;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.painless.PainlessPlugin;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

/**
 * Starts an OpenSearch cluster of several nodes inside this one JVM, bound to 127.0.0.1.
 *
 * <p>Why one JVM: the registry's tests need a real multi-node cluster (replicas, a node that
 * goes away) on a 2-core machine, and one JVM with one heap is far lighter than one process per
 * node. The modules the registry uses (HTTP/transport, the CJK analyzers, reindex, painless) are
 * loaded as classpath plugins, the way OpenSearch's own test framework starts nodes.
 *
 * <p>Protocol: every line meant for a program starts with {@code NDR-OPENSEARCH } followed by one
 * JSON object (everything else on stdout is the engine's log). Commands are read from stdin, one
 * per line: {@code stop N}, {@code start N}, {@code status}, {@code quit}. End of input stops the
 * cluster too, so the cluster never outlives the program that started it.
 */
public final class Launcher {
    private static final String TAG = "NDR-OPENSEARCH ";
    private static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

    private final Path data;
    private final String clusterName;
    private final int[] httpPorts;
    private final int[] transportPorts;
    private final Node[] nodes;

    /** A node whose plugins come from the classpath rather than a plugins directory. */
    static final class ClasspathNode extends Node {
        ClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }
    }

    private static final List<Class<? extends Plugin>> PLUGINS = List.of(
        Netty4Plugin.class, CommonAnalysisPlugin.class, MapperExtrasPlugin.class,
        ReindexPlugin.class, PainlessPlugin.class);

    Launcher(Path data, String clusterName, int[] httpPorts, int[] transportPorts) {
        this.data = data;
        this.clusterName = clusterName;
        this.httpPorts = httpPorts;
        this.transportPorts = transportPorts;
        this.nodes = new Node[httpPorts.length];
    }

    private Settings settings(int i) {
        String seeds = java.util.Arrays.stream(transportPorts)
            .mapToObj(p -> "127.0.0.1:" + p).collect(Collectors.joining(","));
        List<String> names = new ArrayList<>();
        for (int n = 0; n < nodes.length; n++) {
            names.add(nodeName(n));
        }
        return Settings.builder()
            .put("cluster.name", clusterName)
            .put("node.name", nodeName(i))
            .put("path.home", data.resolve("home").toString())
            .put("path.data", data.resolve(nodeName(i)).toString())
            .put("path.logs", data.resolve("logs").toString())
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPorts[i])
            .put("transport.port", transportPorts[i])
            .put("discovery.seed_hosts", seeds)
            .putList("cluster.initial_cluster_manager_nodes", names)
            // start() returns at once; the launcher waits for cluster health itself
            .put("discovery.initial_state_timeout", "0s")
            // several nodes share one heap: the real-memory breaker would see the others' memory
            .put("indices.breaker.total.use_real_memory", false)
            // 2 cores shared by everything on the machine: small thread pools per node
            .put("node.processors", 1)
            // a shared development disk must not turn the test indices read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
    }

    private static String nodeName(int i) {
        return "node-" + i;
    }

    synchronized void startNode(int i) throws Exception {
        if (nodes[i] != null) {
            throw new IllegalStateException(nodeName(i) + " is already running");
        }
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings(i), Collections.emptyMap(), null, () -> nodeName(i));
        Node node = new ClasspathNode(environment, PLUGINS);
        node.start();
        nodes[i] = node;
    }

    synchronized void stopNode(int i) throws IOException, InterruptedException {
        Node node = nodes[i];
        if (node == null) {
            throw new IllegalStateException(nodeName(i) + " is not running");
        }
        nodes[i] = null;
        node.close();
        if (!node.awaitClose(60, TimeUnit.SECONDS)) {
            throw new IllegalStateException(nodeName(i) + " did not close in 60 s");
        }
    }

    synchronized void stopAll() {
        for (int i = 0; i < nodes.length; i++) {
            if (nodes[i] != null) {
                try {
                    stopNode(i);
                } catch (Exception e) {
                    e.printStackTrace();
                }
            }
        }
    }

    private Node anyRunning() {
        for (Node node : nodes) {
            if (node != null) {
                return node;
            }
        }
        throw new IllegalStateException("no node is running");
    }

    /** Waits until every running node has joined and the cluster is at least yellow. */
    String waitForHealth(TimeValue timeout) {
        int running = (int) java.util.Arrays.stream(nodes).filter(n -> n != null).count();
        ClusterHealthResponse health = anyRunning().client().admin().cluster().prepareHealth()
            .setWaitForNodes(Integer.toString(running)).setWaitForYellowStatus()
            .setTimeout(timeout).get();
        return health.getStatus().name().toLowerCase(Locale.ROOT);
    }

    String describe(String event, String status) {
        StringBuilder json = new StringBuilder();
        json.append("{\"event\":\"").append(event).append("\",\"cluster\":\"").append(clusterName)
            .append("\",\"version\":\"").append(Version.CURRENT).append("\",\"status\":\"")
            .append(status).append("\",\"nodes\":[");
        for (int i = 0; i < nodes.length; i++) {
            if (i > 0) {
                json.append(',');
            }
            json.append("{\"name\":\"").append(nodeName(i)).append("\",\"http\":")
                .append(httpPorts[i]).append(",\"transport\":").append(transportPorts[i])
                .append(",\"running\":").append(nodes[i] != null).append('}');
        }
        return json.append("]}").toString();
    }

    private static void emit(String json) {
        OUT.println(TAG + json);
    }

    private static String error(String message) {
        String escaped = message == null ? "" : message.replace("\\", "\\\\").replace("\"", "\\\"")
            .replace("\n", " ");
        return "{\"event\":\"error\",\"message\":\"" + escaped + "\"}";
    }

    private void serve() throws IOException {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.trim().split("\\s+");
            try {
                switch (words[0]) {
                    case "stop" -> {
                        stopNode(Integer.parseInt(words[1]));
                        emit(describe("stopped", waitForHealthOrNone()));
                    }
                    case "start" -> {
                        startNode(Integer.parseInt(words[1]));
                        emit(describe("started", waitForHealth(TimeValue.timeValueSeconds(120))));
                    }
                    case "status" -> emit(describe("status", waitForHealthOrNone()));
                    case "quit" -> {
                        return;
                    }
                    case "" -> { }
                    default -> emit(error("unknown command: " + line));
                }
            } catch (Exception e) {
                emit(error(e.toString()));
            }
        }
    }

    private String waitForHealthOrNone() {
        try {
            return waitForHealth(TimeValue.timeValueSeconds(30));
        } catch (Exception e) {
            return "unavailable";
        }
    }

    private static int[] ports(String spec, int count) throws IOException {
        int[] ports = new int[count];
        String[] given = spec == null || spec.isEmpty() ? new String[0] : spec.split(",");
        List<ServerSocket> held = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) {
                int port = i < given.length ? Integer.parseInt(given[i].trim()) : 0;
                if (port == 0) {
                    // hold every probe socket until all are chosen, so no two nodes get one port
                    ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                    held.add(socket);
                    port = socket.getLocalPort();
                }
                ports[i] = port;
            }
        } finally {
            for (ServerSocket socket : held) {
                socket.close();
            }
        }
        return ports;
    }

    private static String option(String[] args, String name, String fallback) {
        for (int i = 0; i + 1 < args.length; i++) {
            if (args[i].equals(name)) {
                return args[i + 1];
            }
        }
        return fallback;
    }

    public static void main(String[] args) throws Exception {
        String dataOption = option(args, "--data", null);
        if (dataOption == null) {
            System.err.println("usage: Launcher --data DIR [--nodes N] [--cluster-name NAME]"
                + " [--http-ports P,P,...] [--transport-ports P,P,...]");
            System.exit(2);
        }
        int count = Integer.parseInt(option(args, "--nodes", "2"));
        if (count < 1 || count > 9) {
            System.err.println("--nodes must be between 1 and 9");
            System.exit(2);
        }
        Path data = Paths.get(dataOption).toAbsolutePath();
        Files.createDirectories(data.resolve("home").resolve("config"));
        Files.createDirectories(data.resolve("home").resolve("plugins"));
        Files.createDirectories(data.resolve("home").resolve("modules"));
        Files.createDirectories(data.resolve("logs"));
        int[] http = ports(option(args, "--http-ports", ""), count);
        int[] transport = ports(option(args, "--transport-ports", ""), count);

        Settings logSettings = Settings.builder()
            .put("path.home", data.resolve("home").toString())
            .put("logger.level", option(args, "--log-level", "WARN")).build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.configureWithoutConfig(logSettings);

        Launcher launcher = new Launcher(data, option(args, "--cluster-name", "ndr-opensearch"),
            http, transport);
        Runtime.getRuntime().addShutdownHook(new Thread(launcher::stopAll, "ndr-opensearch-stop"));
        long started = System.nanoTime();
        try {
            for (int i = 0; i < count; i++) {
                launcher.startNode(i);
            }
            String status = launcher.waitForHealth(TimeValue.timeValueSeconds(120));
            emit(launcher.describe("ready", status).replaceFirst("\\{",
                "{\"start_ms\":" + (System.nanoTime() - started) / 1_000_000 + ","));
        } catch (Exception e) {
            emit(error(e.toString()));
            launcher.stopAll();
            System.exit(1);
        }
        launcher.serve();
        launcher.stopAll();
        emit("{\"event\":\"exited\"}");
        System.exit(0);
    }
}
