package org.riskgraph.neo4j;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;

/**
 * Runs a local Neo4j Community server (embedded DBMS with the Bolt connector) until SIGTERM.
 *
 * <p>Usage: {@code Launcher --home DIR [--port 7687] [--password PW] [--pagecache 512m]
 * [--plugins DIR]}; the plugins folder holds the APOC jar (also on the classpath).
 * Without a password authentication is off; with one, user {@code neo4j} gets that password.
 * The settings are written to {@code DIR/conf/neo4j.conf} and loaded with strict validation,
 * so a misspelt key stops the start instead of being ignored.
 */
public final class Launcher {

    /** Printed once Bolt accepts connections; the Python manager does not depend on it. */
    static final String READY = "RISKGRAPH_NEO4J_READY";

    private Launcher() {
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opts = parseArgs(args);
        Path home = Path.of(require(opts, "home")).toAbsolutePath();
        int port = Integer.parseInt(opts.getOrDefault("port", "7687"));
        String password = opts.get("password");
        String pageCache = opts.getOrDefault("pagecache", "512m");
        String plugins = opts.get("plugins");

        Path conf = writeConfig(home, port, password != null, pageCache, plugins);
        DatabaseManagementService service = new DatabaseManagementServiceBuilder(home)
                .loadPropertiesFromFile(conf)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("riskgraph-neo4j: shutting down");
            service.shutdown();
            stopped.countDown();
        }, "riskgraph-neo4j-shutdown"));

        if (password != null) {
            try {
                setPassword(service, password);
            } catch (RuntimeException e) {
                e.printStackTrace();
                System.exit(1);  // runs the shutdown hook; Neo4j's threads would keep the JVM alive
            }
        }
        System.out.println(READY + " bolt://127.0.0.1:" + port + (password != null ? " auth=on" : " auth=off"));
        System.out.flush();
        stopped.await();
    }

    /**
     * Embedded access to the system database runs without authentication, so it can set the
     * initial password (a fresh store) or reset it (a store started before with another one).
     */
    private static void setPassword(DatabaseManagementService service, String password) {
        try {
            service.database("system").executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $pw CHANGE NOT REQUIRED", Map.of("pw", password));
        } catch (RuntimeException e) {
            for (Throwable t = e; t != null; t = t.getCause()) {
                String msg = t.getMessage();
                if (msg != null && msg.contains("Old password and new password cannot be the same")) {
                    return;  // a restart with the same password
                }
            }
            throw e;
        }
    }

    private static Path writeConfig(Path home, int port, boolean auth, String pageCache, String plugins)
            throws IOException {
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("server.config.strict_validation.enabled", "true");
        settings.put("server.bolt.enabled", "true");
        settings.put("server.bolt.listen_address", "127.0.0.1:" + port);
        settings.put("server.bolt.advertised_address", "127.0.0.1:" + port);
        settings.put("dbms.security.auth_enabled", Boolean.toString(auth));
        settings.put("server.memory.pagecache.size", pageCache);
        settings.put("dbms.usage_report.enabled", "false");
        settings.put("dbms.routing.enabled", "false");
        if (plugins != null) {
            settings.put("server.directories.plugins", Path.of(plugins).toAbsolutePath().toString());
        }
        settings.put("dbms.security.procedures.unrestricted", "apoc.*");
        // A development server: keep little transaction log history on disk.
        settings.put("db.tx_log.rotation.retention_policy", "256M size");

        StringBuilder text = new StringBuilder("# Written by org.riskgraph.neo4j.Launcher on every start.\n");
        settings.forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
        Path conf = home.resolve("conf").resolve("neo4j.conf");
        Files.createDirectories(conf.getParent());
        Files.writeString(conf, text.toString(), StandardCharsets.UTF_8);
        return conf;
    }

    private static Map<String, String> parseArgs(String[] args) {
        Map<String, String> opts = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value pairs, got: " + a);
            }
            opts.put(a.substring(2), args[++i]);
        }
        return opts;
    }

    private static String require(Map<String, String> opts, String name) {
        String v = opts.get(name);
        if (v == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return v;
    }
}
