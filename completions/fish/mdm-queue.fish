# fish completion for mdm-queue(1).  Hand-written; tests/cmd/docs.t fails
# when an option or command that "mdm-queue [CMD] --list-options" or
# "mdm-queue --list-commands" prints is missing here.

set -l commands enqueue list results cancel clear purge
set -l no_command "not __fish_seen_subcommand_from $commands"
set -l types InstallProfile RemoveProfile ProfileList DeviceInformation SecurityInfo CertificateList InstalledApplicationList DeviceLock EraseDevice RestartDevice ShutDownDevice InstallApplication InstallEnterpriseApplication ScheduleOSUpdate Settings DeviceConfigured DeclarativeManagement ClearPasscode
set -l statuses pending acknowledged error format_error unparseable cancelled superseded

complete -c mdm-queue -f

# Global options, before or after the command.
complete -c mdm-queue -s h -l help -d 'Show help and exit'
complete -c mdm-queue -s V -l version -d 'Show the version and exit'
complete -c mdm-queue -s q -l quiet -d 'Print errors only'
complete -c mdm-queue -s v -l verbose -d 'Say more (repeat for more)'
complete -c mdm-queue -l state-dir -x -a '(__fish_complete_directories)' -d 'State directory'
complete -c mdm-queue -l json -d 'Print records as JSON Lines'
complete -c mdm-queue -s 0 -l null -d 'NUL-terminated records and input ids'

# Commands.
complete -c mdm-queue -n $no_command -a enqueue -d 'Queue a command for enrollments'
complete -c mdm-queue -n $no_command -a list -d 'List queued commands'
complete -c mdm-queue -n $no_command -a results -d 'List the results devices reported'
complete -c mdm-queue -n $no_command -a cancel -d 'Cancel the pending rows of commands'
complete -c mdm-queue -n $no_command -a clear -d 'Cancel every pending command of enrollments'
complete -c mdm-queue -n $no_command -a purge -d 'Delete old finished rows and results'

# enqueue
set -l enq '__fish_seen_subcommand_from enqueue'
complete -c mdm-queue -n "$enq; and not __fish_seen_subcommand_from $types" -a "$types" -d 'Command type'
complete -c mdm-queue -n $enq -l plist -r -F -d 'Queue this command plist as it is'
complete -c mdm-queue -n $enq -l profile -r -F -d 'InstallProfile: the profile'
complete -c mdm-queue -n $enq -l identifier -x -d 'RemoveProfile: PayloadIdentifier; InstallApplication: bundle id'
complete -c mdm-queue -n $enq -l query -x -a 'UDID DeviceName OSVersion BuildVersion ProductName Model ModelName SerialNumber DeviceCapacity AvailableDeviceCapacity BatteryLevel IsSupervised IsActivationLockEnabled WiFiMAC BluetoothMAC' -d 'DeviceInformation: a query'
complete -c mdm-queue -n $enq -l managed-only -d 'Managed items only'
complete -c mdm-queue -n $enq -l pin -x -d 'Six-digit PIN'
complete -c mdm-queue -n $enq -l message -x -d 'Lock screen message'
complete -c mdm-queue -n $enq -l phone-number -x -d 'Lock screen phone number'
complete -c mdm-queue -n $enq -l itunes-store-id -x -d 'App Store id'
complete -c mdm-queue -n $enq -l manifest-url -x -d 'App manifest URL'
complete -c mdm-queue -n $enq -l management-flags -x -d 'ManagementFlags of the app'
complete -c mdm-queue -n $enq -l product-key -x -d 'Product key of the update'
complete -c mdm-queue -n $enq -l product-version -x -d 'OS version to install'
complete -c mdm-queue -n $enq -l install-action -x -a 'Default DownloadOnly InstallASAP NotifyOnly InstallLater InstallForceRestart' -d 'What to do with the update'
complete -c mdm-queue -n $enq -l device-name -x -d 'New device name'
complete -c mdm-queue -n $enq -l host-name -x -d 'New host name'
complete -c mdm-queue -n $enq -l data -r -F -d 'DeclarativeManagement Data (JSON)'
complete -c mdm-queue -n $enq -l notify-user -d 'Let the user save work before the restart'
complete -c mdm-queue -n $enq -l uuid -x -d 'CommandUUID to use'
complete -c mdm-queue -n $enq -l skip-unknown -d 'Queue for the known ids, report the others'
complete -c mdm-queue -n $enq -l ids -d 'Print the enrollment ids queued instead of the UUID'
complete -c mdm-queue -n $enq -l push -d 'Then wake the enrollments queued for through APNs'
complete -c mdm-queue -n $enq -l apns-url -x -d 'With --push: APNs server URL'
complete -c mdm-queue -n $enq -l apns-ca -r -F -d 'With --push: CA to trust for APNs'
complete -c mdm-queue -n $enq -l sandbox -d 'With --push: the APNs sandbox server'

# list
complete -c mdm-queue -n '__fish_seen_subcommand_from list' -l all -d 'Finished commands too'
complete -c mdm-queue -n '__fish_seen_subcommand_from list purge' -l status -x -a "$statuses" -d 'Only rows with this status'
complete -c mdm-queue -n '__fish_seen_subcommand_from list results' -l command -x -d 'Only this command'

# results
complete -c mdm-queue -n '__fish_seen_subcommand_from results' -l raw -d 'Add the result plist'

# purge
complete -c mdm-queue -n '__fish_seen_subcommand_from purge' -l older-than -x -a '7d 30d 90d' -d 'Age of the rows to delete'
complete -c mdm-queue -n '__fish_seen_subcommand_from purge' -l vacuum -d 'Give the freed space back to the file system'
