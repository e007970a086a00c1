export * from './report';
export * from './charts';
export * from './glance';
export * from './figure-files';
export * from './dashboard';
