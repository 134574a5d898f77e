# fish completion for mdm-serve(8).  Hand-written; tests/cmd/docs.t fails
# when an option that "mdm-serve --list-options" prints is missing here.
# mdm-serve has no commands and takes no operands.

# No file names unless an option asks for them.
complete -c mdm-serve -f

# The global options of every mdm tool.
complete -c mdm-serve -s h -l help -d 'Show help and exit'
complete -c mdm-serve -s V -l version -d 'Show the version and exit'
complete -c mdm-serve -s q -l quiet -d 'Print errors only'
complete -c mdm-serve -s v -l verbose -d 'Say more (-v logs every request)'
complete -c mdm-serve -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c mdm-serve -l json -d 'Accepted; mdm-serve prints no records'
complete -c mdm-serve -s 0 -l null -d 'Accepted; mdm-serve prints no records'

# Its own.
complete -c mdm-serve -l listen -x -a '127.0.0.1:8443 [::1]:8443 :8443 :443' -d 'Address and port to listen on'
complete -c mdm-serve -l no-tls -d 'Plain HTTP, behind a TLS-terminating proxy'
complete -c mdm-serve -l tls-cert -r -F -d 'Server certificate chain (PEM)'
complete -c mdm-serve -l tls-key -r -F -d 'Server private key (PEM, mode 0600)'
complete -c mdm-serve -l cert-header -x -a 'X-Client-Cert Client-Cert X-SSL-Client-Cert' -d 'Read the device certificate from this proxy header'
complete -c mdm-serve -l user-auth-zero-challenge -d 'Answer UserAuthenticate with an empty challenge, not 410'
complete -c mdm-serve -l token-exec -r -F -d 'Program that answers GetToken'
complete -c mdm-serve -l dm-url -x -d 'Forward DeclarativeManagement to this DDM server'
complete -c mdm-serve -l webhook-url -x -d 'POST MicroMDM-style events here'
complete -c mdm-serve -l webhook-hmac-key-file -r -F -d 'Sign events with this key (X-Hmac-Signature)'
complete -c mdm-serve -l api-key-file -r -F -d 'Serve the admin API at /v1 with this key'
complete -c mdm-serve -l metrics -d 'Serve Prometheus metrics at /metrics'
complete -c mdm-serve -l apns-url -x -d 'APNs server of the admin API pushes'
complete -c mdm-serve -l apns-ca -r -F -d 'Trust this CA for the APNs server'
complete -c mdm-serve -l sandbox -d 'Push to the APNs sandbox'
complete -c mdm-serve -l threads -x -d 'Worker threads'
complete -c mdm-serve -l max-body -x -d 'Largest request body in bytes (like 8m)'
complete -c mdm-serve -l timeout -x -d 'Close connections idle this long (like 30s)'
complete -c mdm-serve -l port-file -r -F -d 'Write the port to FILE'
complete -c mdm-serve -l no-scep -d 'Do not serve SCEP at /scep'
complete -c mdm-serve -l challenge -x -d 'Static SCEP challenge password'
complete -c mdm-serve -l challenge-file -r -F -d 'Read the static challenge from FILE (0600)'
complete -c mdm-serve -l validity-days -x -d 'Validity of issued identities in days'
complete -c mdm-serve -l min-key-bits -x -d 'Smallest RSA key a CSR may have'
complete -c mdm-serve -l allow-subject -x -d 'Issue only to subjects matching this regex'
complete -c mdm-serve -l csr-verify-exec -r -F -d 'Program that allows a CSR (exit 0)'
complete -c mdm-serve -l url -x -d 'Serve the enrollment profile for this base URL'
complete -c mdm-serve -l scep-url -x -d 'The profile\'s SCEP URL'
complete -c mdm-serve -l topic -x -d 'The profile\'s push topic'
complete -c mdm-serve -l dep-ca -r -F -d 'Apple CA that DEP MachineInfo must chain to'
