// Kafka users and ACLs from a plain spec on stdin, through the Java AdminClient (aiokafka has no API for either).
// Run from its source file: java -cp 'deploy/kafka/lib/*' deploy/kafka/access/EgisAccess.java
// The admin connection comes from the environment (EGIS_KAFKA_BOOTSTRAP, EGIS_KAFKA_ADMIN_USER,
// EGIS_KAFKA_ADMIN_PASSWORD), never from the command line, where any local user could read it.
// Spec lines, whitespace-separated ('#' starts a comment):
//   user <name> <password>                 create or update a SCRAM-SHA-512 credential
//   drop-user <name>                       delete its SCRAM-SHA-512 credential
//   allow <principal> <TOPIC|GROUP|CLUSTER> <LITERAL|PREFIXED> <resource> <operation>
//   revoke <principal>                     delete every ACL of the principal
// Every step is idempotent. Exit 0 when all applied; 1 with the failures on stderr otherwise.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ResourceNotFoundException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

public class EgisAccess {
    private static final int SCRAM_ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        List<AclBinding> acls = new ArrayList<>();
        List<AclBindingFilter> revokes = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int lineNo = 0;
        for (String line; (line = in.readLine()) != null; ) {
            lineNo++;
            String[] f = line.strip().split("\\s+");
            if (f[0].isEmpty() || f[0].startsWith("#")) continue;
            switch (f[0]) {
                case "user" -> {
                    need(f, 3, lineNo);
                    users.add(new UserScramCredentialUpsertion(f[1],
                            new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), f[2]));
                }
                case "drop-user" -> {
                    need(f, 2, lineNo);
                    users.add(new UserScramCredentialDeletion(f[1], ScramMechanism.SCRAM_SHA_512));
                }
                case "allow" -> {
                    need(f, 6, lineNo);
                    acls.add(new AclBinding(
                            new ResourcePattern(ResourceType.fromString(f[2]), f[4], PatternType.fromString(f[3])),
                            new AccessControlEntry(f[1], "*", AclOperation.fromString(f[5]), AclPermissionType.ALLOW)));
                }
                case "revoke" -> {
                    need(f, 2, lineNo);
                    revokes.add(new AclBindingFilter(ResourcePatternFilter.ANY, new AccessControlEntryFilter(
                            f[1], null, AclOperation.ANY, AclPermissionType.ANY)));
                }
                default -> throw new IllegalArgumentException("line " + lineNo + ": unknown verb " + f[0]);
            }
        }
        for (AclBinding acl : acls) {
            if (acl.pattern().resourceType() == ResourceType.UNKNOWN || acl.pattern().patternType() == PatternType.UNKNOWN
                    || acl.entry().operation() == AclOperation.UNKNOWN) {
                throw new IllegalArgumentException("not a valid ACL: " + acl);
            }
        }
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, env("EGIS_KAFKA_BOOTSTRAP"));
        props.put(AdminClientConfig.SECURITY_PROTOCOL_CONFIG, System.getenv().getOrDefault(
                "EGIS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT"));
        props.put("sasl.mechanism", "SCRAM-SHA-512");
        props.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + env("EGIS_KAFKA_ADMIN_USER") + "\" password=\"" + env("EGIS_KAFKA_ADMIN_PASSWORD") + "\";");
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        int failures = 0;
        try (Admin admin = Admin.create(props)) {
            if (!revokes.isEmpty()) failures += report("revoke", () -> admin.deleteAcls(revokes).all().get(30, TimeUnit.SECONDS));
            if (!users.isEmpty()) {
                for (var entry : admin.alterUserScramCredentials(users).values().entrySet()) {
                    String user = entry.getKey();
                    failures += report("user " + user, () -> {
                        try {
                            return entry.getValue().get(30, TimeUnit.SECONDS);
                        } catch (ExecutionException e) {
                            if (e.getCause() instanceof ResourceNotFoundException) return null;  // dropped already
                            throw e;
                        }
                    });
                }
            }
            if (!acls.isEmpty()) failures += report("acls", () -> admin.createAcls(acls).all().get(30, TimeUnit.SECONDS));
        }
        System.out.println("users " + users.size() + ", acls " + acls.size() + ", revoked principals " + revokes.size()
                + ", failures " + failures);
        System.exit(failures == 0 ? 0 : 1);
    }

    interface Step { Object run() throws Exception; }

    private static int report(String what, Step step) {
        try {
            step.run();
            return 0;
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println(what + ": " + cause.getClass().getSimpleName() + ": " + cause.getMessage());
            return 1;
        }
    }

    private static void need(String[] fields, int count, int lineNo) {
        if (fields.length != count) {
            throw new IllegalArgumentException("line " + lineNo + ": expected " + count + " fields, got " + fields.length);
        }
    }

    private static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) throw new IllegalStateException(name + " is not set");
        return value;
    }
}
